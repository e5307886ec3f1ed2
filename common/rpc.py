"""RPC between services: ``@rpc`` entrypoints and a client with a time limit per call.

**Calling** — ``TimedClusterRpcProxy`` injects ``cluster``: ``cluster.<service>.<method>(…)``
calls any service with a time limit (``timeout=`` of the provider, else the
``RPC_TIMEOUT_SECONDS`` config value, else 5 s); ``cluster.<service>.<method>.call(…,
timeout=…)`` sets it per call. Past the limit the caller gets ``ServiceUnavailable`` — the
gateway's 503 — and the late reply, if it ever comes, is dropped. Calling a service that
has no queue (never started) is ``ServiceUnavailable`` at once. Remote errors arrive typed
(``PanelError`` subclasses keep code and extra; others are nameko's ``RemoteError``), and
the worker's call context (request, correlation, user and session ids: nameko's
``nameko.<key>`` headers) travels with every call. Underneath is ``common.rpc_client``:
nameko's wire protocol unchanged, but one connection, channel and reply queue per process,
requests pipelined from every greenthread, transient messages, no publisher confirms.
``NamekoClusterRpcProxy`` is the same interface on nameko's own ``RpcProxy`` (the baseline
of ``bench.rpc``).

**Answering** — ``rpc`` (``PanelRpc``) is nameko's ``@rpc`` with two changes:

- a ``PanelError`` (a refusal the caller is meant to see, such as not_found or
  invalid_credentials) is an expected exception: nameko does not log it as a crash;
- replies are sent **transient and without a publisher confirm**, over one long-lived
  connection per service process (``TransientReplies``), instead of nameko's default
  (a pooled publisher per reply, persistent message, a confirm round trip per reply).

Why the reply change is safe: an RPC is answered now or it fails. The reply goes to the
caller's reply queue, which lives only as long as the caller does; persisting it to disk
protects nothing (after a broker restart no caller waits for it), and a confirm only tells
the *service* that the broker took it — the service cannot do anything useful with a nack
anyway (nameko just raises, the request is not re-run). If a reply is lost (connection
dropped at the wrong moment, broker crash), the caller's time limit ends the call with
``ServiceUnavailable`` (503) — the same outcome as a slow service, never a wrong answer:
every reply carries the ``correlation_id`` of its request and a caller only takes the reply
with its own. The command itself is not affected: its effects were committed by the
service before the reply was sent, and the request is acked after the reply in both cases.
Set ``RPC_TRANSIENT_REPLIES: false`` in a service's config to get nameko's replies back.
"""

import logging
import sys

import eventlet
import kombu.serialization
from amqp import Message
from kombu import Connection
from nameko.constants import (
    ACCEPT_CONFIG_KEY,
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_SERIALIZER,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnknownService, UnserializableValueError, serialize
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.rpc import Rpc, RpcProxy, ServiceProxy, get_rpc_exchange

from common.errors import PanelError, ServiceUnavailable
from common.rpc_client import AmqpLink, LinkDown, RpcClient, context_headers

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
# How long a worker waits for the reply connection to come back before giving the reply up
# (its caller then times out: 503).
REPLY_LINK_WAIT_SECONDS = 5.0


# -- answering --------------------------------------------------------------------------------


class TransientReplies(SharedExtension):
    """One long-lived connection per service process for RPC replies: transient messages,
    no publisher confirms (see the module docstring for why that is safe)."""

    def setup(self):
        config = self.container.config
        self.enabled = bool(config.get("RPC_TRANSIENT_REPLIES", True))
        self.exchange = get_rpc_exchange(config).name
        self.link = None
        if self.enabled:
            exchange = self.exchange
            self.link = AmqpLink(
                config[AMQP_URI_CONFIG_KEY], f"rpc-replies {self.container.service_name}",
                on_connect=lambda channel: channel.exchange_declare(exchange, "topic", durable=True,
                                                                    auto_delete=False),
                ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
                heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
                spawn=self.container.spawn_managed_thread,
            )

    def start(self):
        if self.link is not None:
            self.link.start()

    def stop(self):
        if self.link is not None:
            self.link.stop()

    kill = stop

    def send_response(self, message, result, exc_info):
        """nameko's ``Responder.send_response``, published through the link: the same
        payload (``{"result": …, "error": …}``, encoded like the request), exchange,
        routing key (the request's ``reply_to``) and ``correlation_id``."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
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
                        delivery_mode=NON_PERSISTENT,
                        correlation_id=message.properties.get("correlation_id"))
        try:
            with eventlet.Timeout(REPLY_LINK_WAIT_SECONDS):
                self.link.publish(reply, self.exchange, message.properties["reply_to"])
        except (LinkDown, eventlet.Timeout) as failure:
            # Not sent: the caller's time limit ends its call (503). The request is acked
            # all the same — running a command twice is worse than one lost answer.
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
    """``@rpc`` with ``PanelError`` expected and transient, unconfirmed replies."""

    replies = TransientReplies()

    def __init__(self, expected_exceptions=(), **kwargs):
        if not isinstance(expected_exceptions, tuple):
            expected_exceptions = (expected_exceptions,)
        super().__init__(expected_exceptions=expected_exceptions + (PanelError,), **kwargs)

    def handle_result(self, message, worker_ctx, result, exc_info):
        if not self.replies.enabled:
            return super().handle_result(message, worker_ctx, result, exc_info)
        result, exc_info = self.replies.send_response(message, result, exc_info)
        self.rpc_consumer.queue_consumer.ack_message(message)
        return result, exc_info


rpc = PanelRpc.decorator


def broker_reachable(amqp_uri, timeout):
    """True when a connection to the broker opens within ``timeout`` seconds."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # any failure to connect means "not reachable"
        return False


# -- calling ----------------------------------------------------------------------------------


class TimedMethodProxy:
    """``cluster.<service>.<method>``: call it, or ``.call(…, timeout=…)``."""

    __slots__ = ("_client", "_worker_ctx", "_service", "_method", "_timeout")

    def __init__(self, client, worker_ctx, service, method, timeout):
        self._client = client
        self._worker_ctx = worker_ctx
        self._service = service
        self._method = method
        self._timeout = timeout

    def __call__(self, *args, **kwargs):
        return self.call(*args, timeout=self._timeout, **kwargs)

    def call(self, *args, timeout, **kwargs):
        headers = context_headers(self._worker_ctx.context_data) if self._worker_ctx is not None else {}
        return self._client.call(self._service, self._method, args, kwargs, headers=headers, timeout=timeout)

    def __repr__(self):
        return f"<rpc method {self._service}.{self._method}>"


class TimedServiceProxy:
    def __init__(self, client, worker_ctx, service, timeout):
        self._client = client
        self._worker_ctx = worker_ctx
        self.service_name = service
        self._timeout = timeout

    def __getattr__(self, method):
        if method.startswith("__"):
            raise AttributeError(method)
        return TimedMethodProxy(self._client, self._worker_ctx, self.service_name, method, self._timeout)


class TimedCluster:
    """``cluster.<service>.<method>(...)`` with a time limit per call."""

    def __init__(self, client, worker_ctx, timeout):
        self._client = client
        self._worker_ctx = worker_ctx
        self._timeout = timeout

    def __getattr__(self, service):
        if service.startswith("__"):
            raise AttributeError(service)
        return TimedServiceProxy(self._client, self._worker_ctx, service, self._timeout)


class SharedRpcClient(SharedExtension):
    """The container's one ``RpcClient`` (one connection, one reply queue), shared by every
    ``TimedClusterRpcProxy`` of the service."""

    def setup(self):
        config = self.container.config
        serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
        self.client = RpcClient(
            config[AMQP_URI_CONFIG_KEY], exchange=get_rpc_exchange(config).name,
            name=self.container.service_name, serializer=serializer,
            accept=config.get(ACCEPT_CONFIG_KEY, [serializer]), ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            spawn=self.container.spawn_managed_thread,
        )

    def start(self):
        self.client.start()

    def stop(self):
        self.client.stop()

    kill = stop


class TimedClusterRpcProxy(DependencyProvider):
    """Injects a ``TimedCluster``: every service reachable, every call with a time limit
    (``timeout`` seconds, default the ``RPC_TIMEOUT_SECONDS`` config value, else 5 s)."""

    rpc_client = SharedRpcClient()

    def __init__(self, timeout=None, **options):
        self.timeout = timeout
        self.options = options  # accepted for compatibility with nameko's RpcProxy options

    def setup(self):
        self.default_timeout = self.timeout or float(
            self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        )

    def get_dependency(self, worker_ctx):
        return TimedCluster(self.rpc_client.client, worker_ctx, self.default_timeout)


# -- nameko's own machinery (baseline) --------------------------------------------------------


class NamekoTimedMethodProxy:
    def __init__(self, method_proxy, service, method, timeout):
        self._method_proxy = method_proxy
        self._service = service
        self._method = method
        self._timeout = timeout

    def __call__(self, *args, **kwargs):
        return self.call(*args, timeout=self._timeout, **kwargs)

    def call(self, *args, timeout, **kwargs):
        unavailable = ServiceUnavailable(
            f"the {self._service} service did not answer within {timeout:g}s",
            extra={"service": self._service},
        )
        reply = None
        try:
            with eventlet.Timeout(timeout, unavailable):
                reply = self._method_proxy.call_async(*args, **kwargs)
                return reply.result()
        except UnknownService:
            raise ServiceUnavailable(
                f"the {self._service} service is not running", extra={"service": self._service}
            )
        except ServiceUnavailable:
            if reply is not None:
                self._forget(reply)
            raise

    def _forget(self, reply):
        """Drop the waiting slot of a reply that timed out, so that calls to a dead service
        do not pile up in the reply listener."""
        events = self._method_proxy.reply_listener._reply_events
        for correlation_id, event in list(events.items()):
            if event is reply.reply_event:
                events.pop(correlation_id, None)


class NamekoTimedServiceProxy:
    def __init__(self, proxy, timeout):
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, name):
        return NamekoTimedMethodProxy(getattr(self._proxy, name), self._proxy.service_name, name, self._timeout)


class NamekoTimedCluster:
    """``cluster.<service>.<method>(...)`` with a time limit per call."""

    def __init__(self, worker_ctx, reply_listener, timeout, options):
        self._worker_ctx = worker_ctx
        self._reply_listener = reply_listener
        self._timeout = timeout
        self._options = options

    def __getattr__(self, service):
        proxy = ServiceProxy(self._worker_ctx, service, self._reply_listener, **self._options)
        return NamekoTimedServiceProxy(proxy, self._timeout)


class NamekoClusterRpcProxy(RpcProxy):
    """The previous ``TimedClusterRpcProxy``, on nameko's own ``RpcProxy`` machinery (a
    publisher per call, persistent requests, a confirm per request). Kept as the baseline
    of ``bench.rpc`` and as a fallback; new code uses ``TimedClusterRpcProxy``."""

    def __init__(self, timeout=None, **options):
        super().__init__(target_service=None, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(
            self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        )
        return NamekoTimedCluster(worker_ctx, self.rpc_reply_listener, timeout, self.options)
