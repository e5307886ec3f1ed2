"""The answering side of RPC: ``rpc`` (``PanelRpc``), nameko's ``@rpc`` served by
``PanelRpcConsumer`` — one long-lived ``AmqpLink`` per service process that takes requests
from the socket to their workers and sends each reply with its request's ack in one write,
transient and unconfirmed (``common.rpc`` says why that is safe). ``RPC_TRANSIENT_REPLIES:
false`` in a service's config serves the same entrypoints with nameko's own consumer.
"""

import logging
import sys
from functools import partial

import eventlet
import kombu.serialization
from amqp import Message, spec
from amqp.exceptions import ConsumerCancelled
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.exceptions import MalformedRequest, MethodNotFound, UnserializableValueError, serialize
from nameko.extensions import ProviderCollector
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc, RpcConsumer, get_rpc_exchange

from common.amqp_link import AmqpLink, LinkDown
from common.container import has_free_worker
from common.errors import PanelError

log = logging.getLogger(__name__)

# How long a worker waits for the reply connection to come back before giving the reply up
# (its caller then times out: 503).
REPLY_LINK_WAIT_SECONDS = 5.0



class PanelRpcConsumer(RpcConsumer):
    """The service's RPC queue, consumed on one long-lived ``AmqpLink`` that also carries
    the replies (transient, unconfirmed — see the module docstring for why that is safe).

    Compared with nameko's ``RpcConsumer`` (which a service gets instead with
    ``RPC_TRANSIENT_REPLIES: false``: ``bind`` hands it over, so no method here has two
    modes):

    - a request goes from the socket to ``spawn_worker`` in the link's reader greenthread
      (nameko: kombu's consumer, then one more greenthread per message before the worker's);
    - the reply and the request's ack leave in **one** write, after the worker's result;
    - the queue, its binding and the prefetch (``max_workers``) are nameko's, so nameko
      callers, ``nameko shell`` and the ``ClusterRpcProxy`` keep working unchanged.

    Stopping: when the last entrypoint stops, the consumer is cancelled (requests that
    still arrive go back to the queue for another replica); running workers reply and ack
    on the link, which closes when the container stops its extensions, after its workers.
    A lost connection: its unacked requests go back to the queue (as with nameko), the
    link reconnects and consumes again; a worker's reply still leaves on the new
    connection, its ack is not sent (the broker has put that delivery back already).
    """

    def __init__(self):
        super().__init__()
        self._by_routing_key = {}  # "<service>.<method>" -> its entrypoint
        self._accepting = False

    @property
    def sharing_key(self):
        # One consumer per service queue: a service that also has nameko's plain ``@rpc``
        # entrypoints shares this one with them (or, should theirs be bound first, ours
        # share nameko's: both kinds of entrypoint work on either).
        return RpcConsumer

    def bind(self, container):
        if not container.config.get("RPC_TRANSIENT_REPLIES", True):
            return RpcConsumer().bind(container)  # nameko's own consumer and replies
        return super().bind(container)

    def setup(self):
        config = self.container.config
        service_name = self.container.service_name
        self.exchange = get_rpc_exchange(config).name
        self.queue_name = RPC_QUEUE_TEMPLATE.format(service_name)
        self.routing_key = f"{service_name}.*"
        self.accept = kombu.serialization.prepare_accept_content(self.container.accept)
        self._accepting = True
        self._consumer = None  # (channel, consumer tag) of the current connection
        self.link = AmqpLink(
            config[AMQP_URI_CONFIG_KEY], f"rpc-server {service_name}", on_connect=self._consume,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            spawn=self.container.spawn_managed_thread,
        )

    def register_provider(self, provider):
        super().register_provider(provider)  # (entrypoints may register before our setup)
        self._by_routing_key[f"{self.container.service_name}.{provider.method_name}"] = provider

    def start(self):
        self.link.start()
        self.link.wait_connected()  # like nameko: started once the consumer runs

    def stop(self):
        self._stop_consuming()
        self.link.stop()

    def kill(self):
        self._accepting = False
        self.link.stop()

    def unregister_provider(self, provider):
        self._unregistering_providers.add(provider)
        if not self._providers - self._unregistering_providers:
            self._stop_consuming()
        ProviderCollector.unregister_provider(self, provider)

    def requeue_message(self, message):
        self.link.settle(message.channel, message.delivery_tag, requeue=True)

    # -- the link's reader ----------------------------------------------------------------------

    def _consume(self, channel):
        """Declare the queue as nameko does and consume it (on every (re)connection)."""
        channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
        channel.queue_declare(self.queue_name, durable=True, auto_delete=False)
        channel.queue_bind(self.queue_name, self.exchange, self.routing_key)
        if not self._accepting:  # reconnected while stopping: nothing more to take
            return
        channel.basic_qos(0, self.container.max_workers, False)
        self._consumer = (channel, channel.basic_consume(self.queue_name, callback=self._on_request,
                                                         on_cancel=self._on_cancelled))

    def _on_cancelled(self, consumer_tag):
        """The broker ended our consumer. While stopping that is our own cancel coming back:
        nothing to do (the link must stay up to ack the calls still running). Otherwise (the
        queue was deleted) the link reconnects, which consumes again."""
        if self._accepting:
            raise ConsumerCancelled(consumer_tag, spec.Basic.Cancel)

    def _stop_consuming(self):
        self._accepting = False
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            self.link.cancel(*consumer)

    def _on_request(self, message):
        if not self._accepting:  # arrived after the cancel: for another replica
            self.link.settle(message.channel, message.delivery_tag, requeue=True)
            return
        if has_free_worker(self.container):
            self._dispatch(message)
            eventlet.sleep(0)  # the worker starts now, before this reader reads again
        else:
            # Every worker is busy (event handlers and timers share the pool): wait for one
            # in a greenthread of its own, so that this reader keeps reading replies.
            self.container.spawn_managed_thread(partial(self._dispatch, message))

    def _dispatch(self, message):
        try:
            provider = self._by_routing_key.get(message.delivery_info["routing_key"])
            if provider is None:
                raise MethodNotFound(message.delivery_info["routing_key"].rpartition(".")[2])
            properties = message.properties
            if properties.get("application_headers") is None:  # (nameko's entrypoints iterate them)
                properties["application_headers"] = {}
            try:
                body = kombu.serialization.loads(
                    message.body, properties.get("content_type"), properties.get("content_encoding"),
                    accept=self.accept)
            except Exception as error:
                raise MalformedRequest(f"the request could not be decoded: {error}") from None
            provider.handle_message(body, message)
        except Exception:
            self.handle_result(message, None, sys.exc_info())

    # -- the worker's -----------------------------------------------------------------------------

    def handle_result(self, message, result, exc_info):
        """Reply (nameko's payload ``{"result": …, "error": …}``, encoded like the request,
        to its ``reply_to`` with its ``correlation_id``) and ack the request, in one write."""
        properties = message.properties
        ack = (message.channel, message.delivery_tag)
        reply_to = properties.get("reply_to")
        if not reply_to:  # nobody to answer (a fire-and-forget publish)
            self.link.settle(*ack)
            return result, exc_info
        error = serialize(exc_info[1]) if exc_info is not None else None
        # Answer in the request's serializer (as nameko does); the service's own when the
        # request's could not even be read.
        serializer = kombu.serialization.registry.type_to_name.get(
            properties.get("content_type"), self.container.serializer)
        try:
            content_type, encoding, body = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            # As nameko does: an unserialisable result becomes an error the caller can read.
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, encoding, body = kombu.serialization.dumps({"result": None, "error": error}, serializer)
        if isinstance(body, str):
            body = body.encode(encoding or "utf-8")
        reply = Message(body, content_type=content_type, content_encoding=encoding,
                        delivery_mode=NON_PERSISTENT, correlation_id=properties.get("correlation_id"))
        try:
            with eventlet.Timeout(REPLY_LINK_WAIT_SECONDS):
                self.link.publish(reply, self.exchange, reply_to, ack=ack)
        except (LinkDown, eventlet.Timeout) as failure:
            # Not sent: the caller's time limit ends its call (503). The request was not
            # acked either, and its connection is gone (``publish`` drops a connection it
            # could not finish writing on), so the broker offers the request again.
            log.warning("could not send an RPC reply (%s); the caller will time out", failure)
        return result, exc_info


class SignatureShapes:
    """Entrypoint mixin: nameko checks every call's arguments against the method with
    ``inspect.getcallargs`` (tens of microseconds); whether they fit depends only on how
    many positional arguments and which keyword names a call has, so a shape that fitted
    once is remembered and not checked again. Bad shapes are still refused every time."""

    def check_signature(self, args, kwargs):
        shapes = self.__dict__.setdefault("_fitting_shapes", set())
        shape = (len(args), tuple(sorted(kwargs)))
        if shape not in shapes:
            super().check_signature(args, kwargs)
            shapes.add(shape)


class PanelRpc(SignatureShapes, Rpc):
    """``@rpc`` with ``PanelError`` expected, served by ``PanelRpcConsumer``."""

    rpc_consumer = PanelRpcConsumer()

    def __init__(self, expected_exceptions=(), **kwargs):
        if not isinstance(expected_exceptions, tuple):
            expected_exceptions = (expected_exceptions,)
        super().__init__(expected_exceptions=expected_exceptions + (PanelError,), **kwargs)

    def unpack_message_headers(self, message):
        # A py-amqp message (PanelRpcConsumer) has no headers at all when none were sent.
        return {self._strip_header_name(key): value for key, value in (message.headers or {}).items()}


rpc = PanelRpc.decorator
