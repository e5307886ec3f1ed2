"""``AmqpLink``: one AMQP connection and channel kept open by a reader greenthread — the
connection keeper of both RPC sides (``common.rpc_client.RpcClient`` publishes its requests
and reads its replies through one, ``common.rpc_server.PanelRpcConsumer`` reads its
requests and sends its replies through one).

A reader greenthread drains the socket (consumer callbacks, returns, broker notifications,
heartbeats) and reconnects with back-off when anything fails; ``publish`` frames whole
messages under a lock (and can send a message and an ack in one write); ``stop`` closes the
connection the AMQP way (Connection.Close, then a short wait for Close-Ok), so the ack sent
with a call's last reply is not lost to an abrupt close.
"""

import logging
import os
import socket
import time
import uuid

import eventlet
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps as pack_arguments
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kombu import Connection

from common import amqp_readahead

# Every AMQP connection of a panel process reads ahead (one recv per message, not nine).
amqp_readahead.enable()

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
# How long ``stop`` waits for the broker to confirm the connection's close.
CLOSE_WAIT_SECONDS = 1.0
HEARTBEAT_RATE = 2
_PUBLISH = spec.Basic.Publish
_ACK = spec.Basic.Ack
_CLOSE = spec.Connection.Close
_REJECT = spec.Basic.Reject
_CANCEL = spec.Basic.Cancel


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
