"""Dead-letter queues: see, requeue or drop what the reliable event handlers parked.

A reliable handler (``common.messaging``) that fails ``max_deliveries`` times parks the
event in ``evt-<source>-<type>--<service>.<method>.dlq``, with headers ``x-panel-attempt``
and ``x-panel-last-error``. After the cause is fixed (a deploy, a repaired dependency),
requeue the events: they go back to the handler's main queue, and the handler's inbox
makes a second delivery of something already handled harmless.

    python -m deploy.dlq list                       every dead-letter queue and its depth
    python -m deploy.dlq show QUEUE [--limit N]      the parked events (left in place)
    python -m deploy.dlq requeue QUEUE|--all [--limit N]
                                                    move them back to the main queue
    python -m deploy.dlq purge QUEUE --yes           drop them (after reading them!)
    python -m deploy.dlq serve-metrics [--port 9108] Prometheus gauge of every depth

``--amqp-uri`` defaults to ``AMQP_URI`` as the services read it (``deploy/config``).
"""

import argparse
import json
import signal
import sys
import threading
from dataclasses import dataclass

from kombu import Connection
from kombu.exceptions import OperationalError

ATTEMPT_HEADER = "x-panel-attempt"
ERROR_HEADER = "x-panel-last-error"
REQUEUED_HEADER = "x-panel-requeued-from"
DLQ_SUFFIX = ".dlq"
DEFAULT_METRICS_PORT = 9108


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    service: str  # the service whose handler parked the events

    @property
    def main_queue(self):
        return self.name[: -len(DLQ_SUFFIX)]


def known_queues():
    """The dead-letter queue of every reliable handler of every service."""
    from deploy.components import service_class
    from common.config import SERVICES
    from common.messaging import ReliableEventHandler
    from common.topology import reliable_handlers

    found = []
    for service in SERVICES:
        for method_name, handler in reliable_handlers(service_class(service)):
            _, _, dlq = ReliableEventHandler.queue_names(handler.source_service, handler.event_type, service, method_name)
            found.append(DeadLetterQueue(dlq, service))
    return found


def resolve(name):
    """A queue given by name: one of ``known_queues()``, or any other ``….dlq``."""
    if not name.endswith(DLQ_SUFFIX):
        raise SystemExit(f"{name} is not a dead-letter queue (its name ends in {DLQ_SUFFIX})")
    for queue in known_queues():
        if queue.name == name:
            return queue
    service = name.split("--", 1)[-1].split(".", 1)[0] if "--" in name else "unknown"
    return DeadLetterQueue(name, service)


def depth(connection, queue_name):
    """Messages ready in a queue, or None when it does not exist."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue=queue_name, passive=True).message_count
    except OperationalError:
        return None  # NOT_FOUND closes the channel: the queue was never declared
    except Exception as error:
        if "NOT_FOUND" in str(error):
            return None
        raise
    finally:
        try:
            channel.close()
        except Exception:
            pass  # a channel already closed by the broker


def describe(message):
    """What an operator needs to decide about a parked message."""
    headers = message.headers or {}
    try:
        payload = json.loads(message.body)
    except (TypeError, ValueError):
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    return {
        "event_id": payload.get("event_id"),
        "type": payload.get("type"),
        "source": payload.get("source"),
        "stream_id": payload.get("stream_id"),
        "attempts": headers.get(ATTEMPT_HEADER),
        "last_error": headers.get(ERROR_HEADER),
    }


def show(connection, queue, limit):
    """Up to ``limit`` parked messages; all stay in the queue (never acked: closing the
    channel returns them)."""
    seen = []
    with connection.channel() as channel:
        for _ in range(limit):
            message = channel.basic_get(queue.name, no_ack=False)
            if message is None:
                break
            seen.append(describe(message))
    return seen


def requeue(connection, queue, limit=None):
    """Move up to ``limit`` messages (all when None) back to the handler's main queue:
    published persistently with confirms, then acked here, so a crash can only duplicate
    (the handler's inbox drops the duplicate), never lose one."""
    moved = 0
    publisher = Connection(connection.as_uri(include_password=True), transport_options={"confirm_publish": True})
    try:
        producer = publisher.Producer()
        with connection.channel() as channel:
            while limit is None or moved < limit:
                message = channel.basic_get(queue.name, no_ack=False)
                if message is None:
                    break
                properties = message.properties
                headers = dict(message.headers or {})
                headers.pop(ATTEMPT_HEADER, None)  # a fresh set of attempts
                headers[REQUEUED_HEADER] = queue.name
                extra = {"message_id": properties["message_id"]} if properties.get("message_id") else {}
                producer.publish(
                    message.body, exchange="", routing_key=queue.main_queue, headers=headers,
                    content_type=properties.get("content_type", "application/json"),
                    content_encoding=properties.get("content_encoding", "utf-8"),
                    delivery_mode=2, **extra,
                )
                channel.basic_ack(message.delivery_tag)
                moved += 1
    finally:
        publisher.release()
    return moved


def purge(connection, queue):
    with connection.channel() as channel:
        return channel.queue_purge(queue.name) or 0


class DeadLetterCollector:
    """``panel_dead_letter_messages{service, queue}``, asked of the broker at every scrape;
    ``panel_dead_letter_broker_up`` is 0 when the broker could not be asked."""

    def __init__(self, amqp_uri, queues):
        self.amqp_uri = amqp_uri
        self.queues = queues

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        messages = GaugeMetricFamily("panel_dead_letter_messages",
                                     "Events parked in a reliable handler's dead-letter queue.",
                                     labels=["service", "queue"])
        broker_up = GaugeMetricFamily("panel_dead_letter_broker_up",
                                      "1 when the broker answered the last dead-letter depth query.")
        try:
            with Connection(self.amqp_uri, connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
                for queue in self.queues:
                    count = depth(connection, queue.name)
                    messages.add_metric([queue.service, queue.name], count or 0)
            broker_up.add_metric([], 1)
        except Exception:  # broker unreachable: say so instead of failing the scrape
            broker_up.add_metric([], 0)
        yield messages
        yield broker_up


def serve_metrics(amqp_uri, host, port, stop_event=None):
    """Serve the dead-letter gauges until SIGTERM/SIGINT (or ``stop_event``)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(DeadLetterCollector(amqp_uri, known_queues()))
    server, thread = start_http_server(port, addr=host, registry=registry)
    stop_event = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop_event.set())
    print(f"dead-letter metrics on http://{host}:{server.server_port}/metrics", flush=True)
    stop_event.wait()
    server.shutdown()
    return 0


def default_amqp_uri():
    from common import config as panel_config

    return panel_config.load("notify")["AMQP_URI"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deploy.dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-uri", help="default: AMQP_URI as the services read it")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every dead-letter queue and its depth")
    show_cmd = commands.add_parser("show", help="print parked events (they stay parked)")
    show_cmd.add_argument("queue")
    show_cmd.add_argument("--limit", type=int, default=20)
    requeue_cmd = commands.add_parser("requeue", help="move parked events back to the handler's queue")
    requeue_cmd.add_argument("queue", nargs="?")
    requeue_cmd.add_argument("--all", action="store_true", help="every non-empty dead-letter queue")
    requeue_cmd.add_argument("--limit", type=int, help="at most this many per queue")
    purge_cmd = commands.add_parser("purge", help="drop parked events")
    purge_cmd.add_argument("queue")
    purge_cmd.add_argument("--yes", action="store_true", help="really drop them")
    metrics_cmd = commands.add_parser("serve-metrics", help="export the depths to Prometheus")
    metrics_cmd.add_argument("--host", default="0.0.0.0")
    metrics_cmd.add_argument("--port", type=int, default=DEFAULT_METRICS_PORT)
    args = parser.parse_args(argv)
    amqp_uri = args.amqp_uri or default_amqp_uri()

    if args.command == "serve-metrics":
        return serve_metrics(amqp_uri, args.host, args.port)
    with Connection(amqp_uri) as connection:
        connection.ensure_connection(max_retries=3)
        if args.command == "list":
            for queue in known_queues():
                count = depth(connection, queue.name)
                print(f"{'not declared' if count is None else count:>12}  {queue.name}  ({queue.service})")
            return 0
        if args.command == "show":
            for entry in show(connection, resolve(args.queue), args.limit):
                print(json.dumps(entry))
            return 0
        if args.command == "requeue":
            if args.all == bool(args.queue):
                parser.error("requeue takes a QUEUE or --all")
            queues = known_queues() if args.all else [resolve(args.queue)]
            for queue in queues:
                if depth(connection, queue.name):
                    moved = requeue(connection, queue, args.limit)
                    print(f"requeued {moved} from {queue.name} to {queue.main_queue}")
            return 0
        if args.command == "purge":
            if not args.yes:
                parser.error("purge drops events for good: add --yes (read them with `show` first)")
            queue = resolve(args.queue)
            print(f"dropped {purge(connection, queue)} from {queue.name}")
            return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
