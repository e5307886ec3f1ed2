"""The clients of ``bench.rpc``, one kind per path: ``call()`` makes one round trip (and
raises on a wrong answer), ``close()`` lets go of the connection. The load generator gives
each greenthread a client of its own; the stack's readiness probes and the raw HTTP
forwarder use them too.

kombu, nameko and ``common`` are imported only when a client is made. ``common``'s
transport modules switch py-amqp's read-ahead on for the whole process when imported
(``common.amqp_readahead``); ``RawClient``, the floor, gives its connection py-amqp's own
reader back.
"""

import http.client
import json
import sys
import time
import uuid

from bench import BenchError
from bench.rpc import ECHO_QUEUE

REPLY_TO = "amq.rabbitmq.reply-to"
# The same bytes nameko sends for a call without arguments.
REQUEST_BODY = json.dumps({"args": [], "kwargs": {}}).encode()
CALL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 90.0


class RawClient:
    """Request/reply with kombu over one connection, replies by direct reply-to."""

    def __init__(self, amqp_uri, queue=ECHO_QUEUE):
        from kombu import Connection, Consumer, Producer, Queue

        self.queue = queue
        self.connection = Connection(amqp_uri)
        self.connection.connect()
        # The floor measures kombu and py-amqp as they ship: when this process has imported
        # ``common`` (the panel-rpc client), its read-ahead must not speed the floor up.
        if "common.amqp_readahead" in sys.modules:
            sys.modules["common.amqp_readahead"].use_library_read(self.connection.connection.transport)
        channel = self.connection.channel()
        self.replies = {}
        # Direct reply-to: consume the pseudo-queue (no-ack) before publishing on the channel.
        self.consumer = Consumer(
            channel, queues=[Queue(REPLY_TO, no_declare=True)], no_ack=True,
            on_message=self._on_reply,
        )
        self.consumer.consume()
        self.producer = Producer(channel, auto_declare=False)

    def _on_reply(self, message):
        self.replies[message.properties.get("correlation_id")] = message.body

    def call(self, timeout=CALL_TIMEOUT):
        correlation_id = uuid.uuid4().hex
        self.producer.publish(
            REQUEST_BODY, routing_key=self.queue, reply_to=REPLY_TO, correlation_id=correlation_id,
            content_type="application/json", content_encoding="utf-8", retry=False,
        )
        deadline = time.monotonic() + timeout
        while correlation_id not in self.replies:
            self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
        return self.replies.pop(correlation_id)

    def close(self):
        try:
            self.connection.release()
        except Exception:
            pass


class NamekoClient:
    """nameko's standalone ``ClusterRpcProxy`` (single-threaded: one per greenthread)."""

    def __init__(self, amqp_uri, timeout=CALL_TIMEOUT, service="authnameko"):
        from nameko.standalone.rpc import ClusterRpcProxy

        self.service = service
        self.runner = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout)
        self.proxy = self.runner.start()

    def call(self):
        answer = getattr(self.proxy, self.service).health()
        if answer.get("status") != "ok":
            raise BenchError(f"auth.health answered {answer!r}")
        return answer

    def close(self):
        try:
            self.runner.stop()
        except Exception:
            pass


class PanelClient:
    """``common.rpc_client.RpcClient``: one client (one connection, one reply queue) shared
    by every greenthread, as in a service process."""

    shared = {}  # amqp_uri -> [RpcClient, how many PanelClients use it]

    def __init__(self, amqp_uri, timeout=CALL_TIMEOUT, service="auth"):
        import eventlet

        from common.rpc_client import RpcClient

        self.timeout = timeout
        self.service = service
        if amqp_uri not in self.shared:
            client = RpcClient(amqp_uri, name="bench").start()
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while not client.link.connected and time.monotonic() < deadline:
                eventlet.sleep(0.01)
            self.shared[amqp_uri] = [client, 0]
        self.amqp_uri = amqp_uri
        self.shared[amqp_uri][1] += 1
        self.client = self.shared[amqp_uri][0]

    def call(self):
        answer = self.client.call(self.service, "health", timeout=self.timeout)
        if answer.get("status") != "ok":
            raise BenchError(f"{self.service}.health answered {answer!r}")
        return answer

    def close(self):
        entry = self.shared.get(self.amqp_uri)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                self.shared.pop(self.amqp_uri)[0].stop()


class HttpClient:
    """One keep-alive HTTP/1.1 connection (``http.client``: the lightest client, so the
    client's own cost stays small next to the server's)."""

    def __init__(self, port, path, timeout=CALL_TIMEOUT):
        self.port = port
        self.path = path
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self):
        try:
            self.connection.request("GET", self.path)
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            # A dropped keep-alive connection: reconnect on the next call.
            self.connection.close()
            raise
        if response.status != 200:
            raise BenchError(f"GET {self.path} answered {response.status}: {body[:200]!r}")
        return body

    def close(self):
        self.connection.close()
