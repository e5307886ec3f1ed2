"""Live notifications for Server-Sent Events (R-LOG-2, R-SUP-4).

Each gateway process keeps, per customer, the queues of its own open streams. notify
publishes every new entry as ``notification_created``; every gateway instance receives it
through a broadcast handler (a queue of its own) and hands it to its streams of that
customer. So two gateways each deliver to their own clients.

A stream lives no longer than its session: logging out (or out everywhere, or resetting
the password) ends this instance's streams of that session (or user) at once, and every
stream checks its session again at each heartbeat, so one whose session ended on another
instance, or expired, ends within ``LIVE_HEARTBEAT_SECONDS``. It ends with a
``session_ended`` event, after which the client must log in again.
"""

import json
import queue
import time

from nameko.extensions import DependencyProvider

HEARTBEAT_SECONDS = 15
STREAM_QUEUE_LIMIT = 1000
SESSION_ENDED = "event: session_ended\ndata: {}\n\n"
_END = object()  # put in a stream's queue: its session ended


class LiveRegistry:
    def __init__(self):
        self.streams = {}  # user_id -> set of queues
        self.session_of = {}  # queue -> session_id
        self.heartbeat = HEARTBEAT_SECONDS

    def open(self, user_id, session_id=None):
        stream = queue.Queue(maxsize=STREAM_QUEUE_LIMIT)
        self.streams.setdefault(user_id, set()).add(stream)
        self.session_of[stream] = session_id
        return stream

    def close(self, user_id, stream):
        streams = self.streams.get(user_id, set())
        streams.discard(stream)
        self.session_of.pop(stream, None)
        if not streams:
            self.streams.pop(user_id, None)

    def end(self, user_id, session_id=None):
        """End this instance's streams of ``user_id`` — only those of ``session_id`` when
        given. A stream whose queue is full ends at its next session check instead."""
        for stream in list(self.streams.get(user_id, ())):
            if session_id is None or self.session_of.get(stream) == session_id:
                try:
                    stream.put_nowait(_END)
                except queue.Full:
                    pass  # its next heartbeat finds the session gone

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


def sse_stream(registry, user_id, stream, missed, heartbeat=HEARTBEAT_SECONDS, session_alive=lambda: True):
    """The body of a stream: what was missed, then every new entry, with heartbeat comments
    so proxies keep idle connections open. ``session_alive()`` is asked at every heartbeat
    (and at most once a heartbeat while entries flow); the stream ends with a
    ``session_ended`` event when it says no or the registry ends the stream. Ends (and
    unregisters) when the client leaves."""
    try:
        yield "retry: 3000\n: connected\n\n"
        last = 0
        for item in missed:
            last = item["position"]
            yield frame(item)
        next_check = time.monotonic() + heartbeat
        while True:
            try:
                item = stream.get(timeout=heartbeat)
            except queue.Empty:
                item = None
            if item is _END:
                yield SESSION_ENDED
                return
            if item is None or time.monotonic() >= next_check:
                if not session_alive():
                    yield SESSION_ENDED
                    return
                next_check = time.monotonic() + heartbeat
            if item is None:
                yield ": heartbeat\n\n"
            elif item["position"] > last:  # anything also in `missed` is not sent twice
                last = item["position"]
                yield frame(item)
    finally:
        registry.close(user_id, stream)


class LiveNotifications(DependencyProvider):
    """The process-wide registry of open streams (``heartbeat``: ``LIVE_HEARTBEAT_SECONDS``)."""

    def setup(self):
        self.registry = LiveRegistry()
        self.registry.heartbeat = float(self.container.config.get("LIVE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))

    def get_dependency(self, worker_ctx):
        return self.registry
