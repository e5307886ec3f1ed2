"""A lean RPC client that speaks nameko's RPC wire protocol on one long-lived connection.

nameko's ``RpcProxy`` builds a publisher per call, takes a pooled connection, publishes the
request persistent and waits for a publisher confirm before it even starts waiting for the
reply. ``RpcClient`` sends exactly the same request (the RPC exchange, routing key
``<service>.<method>``, body ``{"args": …, "kwargs": …}`` in the configured serializer,
``reply_to`` / ``correlation_id``, the call context as ``nameko.<key>`` headers), so
services keep their plain ``@rpc`` entrypoints, but:

- one connection and one channel per process, opened once; one reply queue declared and
  consumed once (``rpc.reply-<name>-<uuid>`` bound to the RPC exchange, as nameko's);
- requests from any number of greenthreads are pipelined on that channel; one reader
  greenthread hands every reply to the caller whose ``correlation_id`` it carries (a fresh
  uuid4 per call, so an answer can only reach the call that asked for it);
- requests are transient (delivery mode 1) and carry a per-message TTL equal to the call's
  time limit: a request nobody picked up in time is dropped by the broker instead of being
  executed long after its caller gave up;
- every call has a time limit; past it the caller gets ``ServiceUnavailable`` (503
  ``unavailable``) and a late reply is dropped;
- a service without a queue is detected at once: requests are published ``mandatory`` and
  the broker's ``basic.return`` ends the call with ``ServiceUnavailable``;
- a lost connection is opened again by the reader (with back-off); calls made meanwhile
  wait for it within their own time limit. The reply queue keeps its name across
  reconnects (it expires 5 minutes after its consumer left, like nameko's), so a reply sent
  during a short outage still reaches its caller. A request whose publish failed is never
  sent again (it might have arrived): the caller gets ``ServiceUnavailable`` and, as after
  any 503, does not know whether the command ran.

Remote errors come back as nameko serialises them: registered ``PanelError`` subclasses as
the same type (code, fields, extra), anything else as nameko's ``RemoteError``.

The connection underneath is a ``common.amqp_link.AmqpLink``. ``TimedClusterRpcProxy``
injects the client into a service as ``cluster`` (``common.rpc`` tells how to use it).
"""

import logging
import uuid

import eventlet
from amqp import Message
from eventlet.event import Event
from kombu.serialization import dumps, loads, prepare_accept_content
from nameko.constants import (
    ACCEPT_CONFIG_KEY,
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_SERIALIZER,
    HEADER_PREFIX,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import deserialize
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TTL, get_rpc_exchange

from common import rpc_errors  # noqa: F401 - registers the error types
from common.amqp_link import AmqpLink, LinkDown
from common.errors import ServiceUnavailable

log = logging.getLogger(__name__)

DEFAULT_EXCHANGE = "nameko-rpc"
DEFAULT_TIMEOUT_SECONDS = 5.0
# Commands that call a payment provider or an S3 cluster while the customer waits (two
# provider calls of PAYMENT_TIMEOUT_SECONDS 10 fit).
SLOW_TIMEOUT_SECONDS = 30.0
_UNROUTABLE = object()


def context_headers(context_data):
    """nameko's call-context headers (``nameko.<key>``) for a worker's context data."""
    return {f"{HEADER_PREFIX}.{key}": value for key, value in context_data.items() if value is not None}


class RpcClient:
    """Calls ``<service>.<method>`` over one ``AmqpLink`` shared by every greenthread of the
    process. ``start()`` before use, ``stop()`` at the end; ``call`` is greenthread-safe."""

    def __init__(self, amqp_uri, exchange=DEFAULT_EXCHANGE, name="client", serializer="json",
                 accept=None, ssl=None, login_method=None, heartbeat=60, connect_timeout=5.0,
                 spawn=eventlet.spawn):
        self.exchange = exchange
        self.serializer = serializer
        self.accept = prepare_accept_content(accept or [serializer])
        reply_id = str(uuid.uuid4())
        self.reply_routing_key = reply_id
        self.reply_queue = RPC_REPLY_QUEUE_TEMPLATE.format(name, reply_id)
        self._pending = {}  # correlation id -> Event of the call waiting for that reply
        self.link = AmqpLink(
            amqp_uri, f"rpc-client {name}", on_connect=self._declare, ssl=ssl,
            login_method=login_method, heartbeat=heartbeat, connect_timeout=connect_timeout,
            spawn=spawn,
        )

    def start(self):
        self.link.start()
        return self

    def stop(self):
        self.link.stop()
        for waiter in list(self._pending.values()):
            if not waiter.ready():
                waiter.send(LinkDown("the RPC client stopped"))
        self._pending.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def connection_name(self):
        return self.link.connection_name

    def _declare(self, channel):
        # Same exchange arguments as nameko's, so declaring is harmless when services did
        # already, and publishing works before any service ever started.
        channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
        channel.queue_declare(self.reply_queue, durable=False, auto_delete=False,
                              arguments={"x-expires": RPC_REPLY_QUEUE_TTL})
        channel.queue_bind(self.reply_queue, self.exchange, self.reply_routing_key)
        channel.basic_consume(self.reply_queue, no_ack=True, callback=self._on_reply)
        channel.events["basic_return"].add(self._on_return)

    # -- calling ------------------------------------------------------------------------------

    def call(self, service, method, args=(), kwargs=None, headers=None, timeout=5.0):
        """``service.method(*args, **kwargs)``: its result, or the remote error raised.
        ``ServiceUnavailable`` when no answer came within ``timeout`` seconds, when the
        service has no queue, or when the broker cannot be reached."""
        correlation_id = str(uuid.uuid4())
        content_type, content_encoding, body = dumps({"args": args, "kwargs": kwargs or {}}, self.serializer)
        if isinstance(body, str):
            body = body.encode(content_encoding or "utf-8")
        message = Message(
            body, content_type=content_type, content_encoding=content_encoding,
            delivery_mode=NON_PERSISTENT, reply_to=self.reply_routing_key,
            correlation_id=correlation_id, application_headers=headers or {},
            expiration=str(max(int(timeout * 1000), 1)),
        )
        waiter = Event()
        self._pending[correlation_id] = waiter
        timer = eventlet.Timeout(timeout)
        try:
            self.link.publish(message, self.exchange, f"{service}.{method}", mandatory=True)
            reply = waiter.wait()
        except eventlet.Timeout as expired:
            if expired is not timer:
                raise
            raise ServiceUnavailable(
                f"the {service} service did not answer within {timeout:g}s", extra={"service": service}
            ) from None
        except LinkDown as error:
            raise ServiceUnavailable(f"calling the {service} service failed: {error}",
                                     extra={"service": service}) from None
        finally:
            timer.cancel()
            self._pending.pop(correlation_id, None)
        if reply is _UNROUTABLE:
            raise ServiceUnavailable(f"the {service} service is not running", extra={"service": service})
        if isinstance(reply, Exception):
            raise ServiceUnavailable(f"calling the {service} service failed: {reply}", extra={"service": service})
        properties = reply.properties
        payload = loads(reply.body, properties.get("content_type"), properties.get("content_encoding"),
                        accept=self.accept)
        error = payload.get("error")
        if error:
            raise deserialize(error)
        return payload.get("result")

    # -- run by the link's reader -------------------------------------------------------------

    def _on_reply(self, message):
        waiter = self._pending.pop(message.properties.get("correlation_id"), None)
        if waiter is not None and not waiter.ready():
            waiter.send(message)
        else:
            log.debug("dropped a reply nobody waits for any more (timed out)")

    def _on_return(self, exc, exchange, routing_key, message):
        waiter = self._pending.pop(message.properties.get("correlation_id"), None)
        if waiter is not None and not waiter.ready():
            waiter.send(_UNROUTABLE)


# -- the cluster: the client injected into a service ----------------------------------------


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
    """``cluster.<service>.<method>(...)`` with a time limit per call; ``cluster.slow.…``
    the same with the longer limit for commands that wait on the outside world while the
    caller waits (a payment provider, an S3 cluster)."""

    def __init__(self, client, worker_ctx, timeout, slow_timeout=None):
        self._client = client
        self._worker_ctx = worker_ctx
        self._timeout = timeout
        self._slow_timeout = slow_timeout or timeout

    @property
    def slow(self):
        return TimedCluster(self._client, self._worker_ctx, self._slow_timeout)

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
    (``timeout`` seconds, default the ``RPC_TIMEOUT_SECONDS`` config value, else 5 s;
    through ``cluster.slow``, ``RPC_SLOW_TIMEOUT_SECONDS``, else 30 s)."""

    rpc_client = SharedRpcClient()

    def __init__(self, timeout=None, **options):
        self.timeout = timeout
        self.options = options  # accepted for compatibility with nameko's RpcProxy options

    def setup(self):
        self.default_timeout = self.timeout or float(
            self.container.config.get("RPC_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        )
        self.slow_timeout = float(self.container.config.get("RPC_SLOW_TIMEOUT_SECONDS") or SLOW_TIMEOUT_SECONDS)

    def get_dependency(self, worker_ctx):
        return TimedCluster(self.rpc_client.client, worker_ctx, self.default_timeout, self.slow_timeout)
