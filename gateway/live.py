"""Live notifications for Server-Sent Events (R-LOG-2, R-SUP-4).

Each gateway process keeps, per customer, the queues of its own open streams. notify
publishes every new entry as ``notification_created``; every gateway instance receives it
through a broadcast handler (a queue of its own) and hands it to its streams of that
customer. So two gateways each deliver to their own clients.
"""

import json
import queue

from nameko.extensions import DependencyProvider

HEARTBEAT_SECONDS = 15
STREAM_QUEUE_LIMIT = 1000


class LiveRegistry:
    def __init__(self):
        self.streams = {}  # user_id -> set of queues

    def open(self, user_id):
        stream = queue.Queue(maxsize=STREAM_QUEUE_LIMIT)
        self.streams.setdefault(user_id, set()).add(stream)
        return stream

    def close(self, user_id, stream):
        streams = self.streams.get(user_id, set())
        streams.discard(stream)
        if not streams:
            self.streams.pop(user_id, None)

    def publish(self, user_id, item):
        for stream in list(self.streams.get(user_id, ())):
            try:
                stream.put_nowait(item)
            except queue.Full:
                pass  # a client that stopped reading; it reconnects with Last-Event-ID

    def connected(self):
        return sum(len(s) for s in self.streams.values())


def frame(item):
    """One Server-Sent Events frame; the id is the entry's log position."""
    return f"id: {item['position']}\nevent: notification\ndata: {json.dumps(item)}\n\n"


def sse_stream(registry, user_id, stream, missed, heartbeat=HEARTBEAT_SECONDS):
    """The body of a stream: what was missed, then every new entry, with heartbeat comments
    so proxies keep idle connections open. Ends (and unregisters) when the client leaves."""
    try:
        yield "retry: 3000\n: connected\n\n"
        last = 0
        for item in missed:
            last = item["position"]
            yield frame(item)
        while True:
            try:
                item = stream.get(timeout=heartbeat)
            except queue.Empty:
                yield ": heartbeat\n\n"
                continue
            if item["position"] > last:  # anything also in `missed` is not sent twice
                last = item["position"]
                yield frame(item)
    finally:
        registry.close(user_id, stream)


class LiveNotifications(DependencyProvider):
    """The process-wide registry of open streams."""

    def setup(self):
        self.registry = LiveRegistry()

    def get_dependency(self, worker_ctx):
        return self.registry
