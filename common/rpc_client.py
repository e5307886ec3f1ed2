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

``AmqpLink`` is the connection keeper both use: one connection + channel, a reader
greenthread (heartbeats, broker notifications, reconnects) and a publish that frames
whole messages under a lock. ``common.rpc.PanelRpc`` sends its replies through one too.
"""

import logging
import os
import socket
import time
import uuid

import eventlet
from amqp import Message, spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps as pack_arguments
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kombu import Connection
from kombu.serialization import dumps, loads, prepare_accept_content
from nameko.constants import HEADER_PREFIX, NON_PERSISTENT
from nameko.exceptions import deserialize
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TTL

from common import amqp_readahead, rpc_errors  # noqa: F401 - rpc_errors registers the error types
from common.errors import ServiceUnavailable

# Every AMQP connection of a panel process reads ahead (one recv per message, not nine).
amqp_readahead.enable()

log = logging.getLogger(__name__)

DEFAULT_EXCHANGE = "nameko-rpc"
RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
# How long ``stop`` waits for the broker to confirm the connection's close.
CLOSE_WAIT_SECONDS = 1.0
HEARTBEAT_RATE = 2
_UNROUTABLE = object()
_PUBLISH = spec.Basic.Publish
_ACK = spec.Basic.Ack
_CLOSE = spec.Connection.Close
_REJECT = spec.Basic.Reject
_CANCEL = spec.Basic.Cancel


def context_headers(context_data):
    """nameko's call-context headers (``nameko.<key>``) for a worker's context data."""
    return {f"{HEADER_PREFIX}.{key}": value for key, value in context_data.items() if value is not None}


class LinkDown(ConnectionError):
    """The message could not be handed to the broker (the connection is gone)."""


class _FrameCollector:
    """A transport stand-in for py-amqp's frame writer: collects the bytes of several
    methods so that they leave in one ``send``."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))  # the writer reuses its buffer: copy

    def take(self):
        data, self.chunks = b"".join(self.chunks), []
        return data


class AmqpLink:
    """One AMQP connection and channel kept open by a reader greenthread.

    ``on_connect(channel)`` runs on every (re)connection before anyone may publish
    (declarations, consumers). The reader drains the socket, so consumer callbacks, returns
    and broker notifications run in it; it sends heartbeats, and when anything fails it
    drops the connection and opens a new one with back-off. ``publish`` is
    greenthread-safe (whole messages are written under a lock, so frames of two messages
    never interleave) and waits for the connection while it is being re-opened (bound by
    the caller's ``eventlet.Timeout``)."""

    def __init__(self, amqp_uri, name, on_connect=None, ssl=None, login_method=None, heartbeat=60,
                 connect_timeout=5.0, spawn=eventlet.spawn):
        self.amqp_uri = amqp_uri
        self.on_connect = on_connect
        self.ssl = ssl
        self.login_method = login_method
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self._spawn = spawn
        # Shown in RabbitMQ's management UI (and lets a test find this very connection).
        self.connection_name = f"{name} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self._write_lock = Semaphore()
        self._ready = Event()  # sent when connected; replaced when the connection is lost
        self._connection = None  # kombu Connection
        self._channel = None  # py-amqp Channel
        self._collector = _FrameCollector()
        self._batch_writer = None  # py-amqp frame writer into the collector
        self._running = False
        self._closing = False
        self._reader = None
        self.connects = 0  # connections opened so far (tests, logs)

    @property
    def connected(self):
        return self._channel is not None

    def start(self):
        if not self._running:
            self._running, self._closing = True, False
            self._reader = self._spawn(self._run)
        return self

    def stop(self):
        self._close_gracefully()
        self._running = False
        self._drop(self._channel)
        if not self._ready.ready():  # wake whoever waits for a connection: there is none to come
            self._ready.send_exception(LinkDown("the AMQP link is stopped"))
        reader, self._reader = self._reader, None
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()

    def _close_gracefully(self):
        """Ask the broker to close the connection and wait (at most ``CLOSE_WAIT_SECONDS``)
        for its Close-Ok: the broker then has handled everything written before — the ack
        sent with a call's last reply included. A socket that just goes can take frames the
        broker read but had not handled yet with it: an answered call whose ack is lost that
        way runs again on another replica."""
        channel, reader = self._channel, self._reader
        if channel is None or reader is None or reader is eventlet.getcurrent() or not self._running:
            return
        self._closing = True
        try:
            with self._write_lock:
                channel.connection.send_method(_CLOSE, "BsBB", (200, "link stopped", 0, 0))
        except Exception:
            return  # the connection is gone already: nothing more to hand over
        with eventlet.Timeout(CLOSE_WAIT_SECONDS, False):
            reader.wait()  # py-amqp closes the socket on Close-Ok; the reader then ends

    def wait_connected(self):
        """Block until the link is connected (the first time, or again after a loss);
        ``LinkDown`` if it is stopped meanwhile."""
        while self._channel is None:
            self._ready.wait()

    def publish(self, message, exchange, routing_key, mandatory=False, ack=None):
        """Hand ``message`` (an ``amqp.Message``) to the broker: no confirm, so this returns
        as soon as it is written. ``ack=(channel, delivery_tag)`` acknowledges a delivery
        in the same write (one send, one wake-up of the broker), unless that delivery came
        on a connection since lost — the broker has put it back then. ``LinkDown`` when it
        could not be written."""
        if not self._running:
            raise LinkDown("the AMQP link is stopped")
        channel = self._channel
        while channel is None:
            self._ready.wait()
            channel = self._channel
        try:
            with self._write_lock:
                # py-amqp's basic_publish would first read the socket (for connection.blocked
                # notices) from this greenthread while the reader reads it too; the reader
                # handles those notices, so send the method directly.
                publish_arguments = (0, exchange, routing_key, mandatory, False)
                if ack is None or ack[0] is not channel:
                    channel.send_method(_PUBLISH, "Bssbb", publish_arguments, message)
                else:
                    self._write_together(channel, (
                        (_PUBLISH, "Bssbb", publish_arguments, message),
                        (_ACK, "Lb", (ack[1], False), None),
                    ))
        except BaseException as error:
            # Also a time limit (eventlet.Timeout) that fired while waiting for the lock or
            # in the middle of a write (a broker that blocks publishers under an alarm):
            # half a frame may be on the wire, so this connection is done for. Its unacked
            # deliveries go back to their queues.
            self._drop(channel)
            if isinstance(error, Exception):
                raise LinkDown(f"lost the connection to the broker: {error}") from error
            raise

    def settle(self, channel, delivery_tag, requeue=None):
        """Acknowledge a delivery (``requeue=None``), or reject it — back to its queue with
        ``requeue=True``. Nothing to do for a delivery of a lost connection (the broker put
        it back already). Never raises: a failed write drops the connection, and the broker
        puts the delivery back."""
        if requeue is None:
            self._send_if_current(channel, _ACK, "Lb", (delivery_tag, False))
        else:
            self._send_if_current(channel, _REJECT, "Lb", (delivery_tag, requeue))

    def cancel(self, channel, consumer_tag):
        """Stop a consumer (no wait for the broker's answer; deliveries already under way
        still arrive)."""
        self._send_if_current(channel, _CANCEL, "sb", (consumer_tag, True))

    def _send_if_current(self, channel, method, argument_format, arguments):
        if channel is None or channel is not self._channel:
            return
        try:
            with self._write_lock:
                channel.send_method(method, argument_format, arguments)
        except Exception as error:
            log.warning("AMQP link %s: could not send %s (%s)", self.connection_name, method, error)
            self._drop(channel)

    def _write_together(self, channel, methods):
        """Frame ``methods`` — (method, argument format, arguments, content) — and send
        them in one write. Called under the write lock."""
        connection = channel.connection
        if self._batch_writer is None or self._batch_writer[0] is not connection:
            self._batch_writer = (connection, frame_writer(connection, self._collector))
        write_frame = self._batch_writer[1]
        self._collector.chunks = []  # nothing left over from a write that failed
        for method, argument_format, arguments, content in methods:
            write_frame(1, channel.channel_id, method, pack_arguments(argument_format, arguments), content)
        connection.transport.write(self._collector.take())

    # -- the reader ---------------------------------------------------------------------------

    def _run(self):
        failures = 0
        while self._running:
            try:
                channel = self._connect()
                failures = 0
                self._read(channel)
            except Exception as error:  # any failure of the connection: open a new one
                if not self._running or self._closing:
                    return
                failures += 1
                delay = RECONNECT_DELAYS[min(failures - 1, len(RECONNECT_DELAYS) - 1)]
                log.warning("AMQP link %s lost (%s: %s); reconnecting in %ss",
                            self.connection_name, type(error).__name__, error, delay)
                self._drop(self._channel)
                eventlet.sleep(delay)

    def _connect(self):
        connection = Connection(
            self.amqp_uri, ssl=self.ssl, login_method=self.login_method, heartbeat=self.heartbeat,
            connect_timeout=self.connect_timeout,
            transport_options={"client_properties": {"connection_name": self.connection_name}},
        )
        self._connection = connection
        connection.connect()
        channel = connection.connection.channel()
        if self.on_connect is not None:
            self.on_connect(channel)
        self._channel = channel
        self.connects += 1
        if not self._ready.ready():
            self._ready.send(True)
        return channel

    def _read(self, channel):
        raw = self._connection.connection
        interval = min(self.heartbeat / HEARTBEAT_RATE, 1.0) if self.heartbeat else 1.0
        next_tick = time.monotonic() + interval
        while self._running and self._channel is channel:
            try:
                raw.drain_events(timeout=interval)
            except socket.timeout:
                pass  # nothing arrived within the interval: time for a heartbeat
            if self.heartbeat and time.monotonic() >= next_tick:
                with self._write_lock:
                    raw.heartbeat_tick(rate=HEARTBEAT_RATE)
                next_tick = time.monotonic() + interval

    def _drop(self, channel):
        """Forget the connection of ``channel`` (once): publishers wait for the next one,
        which the reader opens."""
        if channel is not None and self._channel is not channel:
            return  # that connection was already dropped
        if self._ready.ready():
            self._ready = Event()
        self._channel = None
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.collect()  # close the socket; the reader wakes up and reconnects
            except Exception:
                log.debug("error dropping the AMQP connection", exc_info=True)


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
