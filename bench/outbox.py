"""Event publishing through the real ``OutboxRelay``: confirmed one by one vs in batches.

    python -m bench.outbox [--events 5000] [--repeat 3]

On a RabbitMQ vhost of its own (created and deleted through the management API) and a
SQLite event store in a temporary folder (the test domain's ``credited`` events of
``tests/support.py``; ``--streams`` streams taken in turn, ``--run`` events of one stream
per transaction), it drains the whole log through
``common.eventstore.outbox.OutboxRelay`` with each publisher below, ``--repeat`` times
each (checkpoint reset to 0 and the queue purged before each pass), and reports the median
events/s. One durable queue is bound to every event type, so every message is routed and
stored persistently, as a consumer's queue would store it.

    unconfirmed    persistent messages, no confirms at all (kombu producer): the floor —
                   not safe for an outbox, shown only to see what confirms cost
    one-by-one     the previous ConfirmedPublisher: kombu producer on a confirm channel,
                   one confirm round trip per event
    window-1       common.messaging.ConfirmedPublisher(window=1): the new code, still
                   waiting for each confirm before the next publish
    batched        common.messaging.ConfirmedPublisher() (window 1000; the relay hands it
                   500 events at a time): the batch is written, then its acks are read;
                   never two events of one stream unconfirmed at once, so a run of one
                   stream's events goes one confirm at a time (``--run`` shows that cost)

The last line is one JSON object with every number.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # noqa: E402 — as every service is

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from kombu import Connection, Producer, Queue  # noqa: E402
from nameko.constants import PERSISTENT  # noqa: E402

from bench import BenchError  # noqa: E402
from bench.broker import Vhost  # noqa: E402
from bench.measure import CpuWindow, fmt, oldest_pid_named, table  # noqa: E402
from common.eventstore.outbox import OutboxRelay  # noqa: E402
from common.messaging import ConfirmedPublisher, context_headers, event_exchange  # noqa: E402
from tests.support import credited, make_store  # noqa: E402

SOURCE = "ledger"
QUEUE = "bench-outbox"


class KombuPublisher:
    """The publisher the relay used before batching (kombu ``Producer.publish`` on a
    ``confirm_publish`` connection: one confirm round trip per event); with
    ``confirms=False`` the unconfirmed floor."""

    def __init__(self, amqp_uri, confirms=True):
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": confirms})
        self.exchange = event_exchange(SOURCE)
        self.producer = Producer(self.connection.channel(), exchange=self.exchange)

    def __call__(self, envelopes):
        for item in envelopes:
            self.producer.publish(
                item, routing_key=item["type"], serializer="json", delivery_mode=PERSISTENT,
                headers=context_headers(item), message_id=item["event_id"],
            )
        return len(envelopes)

    def close(self):
        self.connection.release()


PUBLISHERS = {
    "unconfirmed": lambda uri: KombuPublisher(uri, confirms=False),
    "one-by-one": lambda uri: KombuPublisher(uri, confirms=True),
    "window-1": lambda uri: ConfirmedPublisher(uri, SOURCE, window=1),
    "batched": lambda uri: ConfirmedPublisher(uri, SOURCE),
}


def fill(store, count, streams, run):
    """``count`` events over ``streams`` streams, taken in turn, ``run`` events of one
    stream per transaction (one command appending ``run`` events)."""
    versions = [0] * streams
    stream = 0
    for start in range(0, count, run):
        events = [credited(index) for index in range(start, min(start + run, count))]
        store.append(f"acc-{stream}", versions[stream], events)
        versions[stream] += len(events)
        stream = (stream + 1) % streams


def reset(store, amqp_uri):
    table_ = store.tables.relay_checkpoints
    with store.transaction() as tx:
        tx.conn.execute(table_.update().values(position=0, owner=None, lease_until=None))
    with Connection(amqp_uri) as connection:
        Queue(QUEUE, exchange=event_exchange(SOURCE), routing_key="#", durable=True)(connection.channel()).purge()


def measure(store, amqp_uri, name, count):
    reset(store, amqp_uri)
    publisher = PUBLISHERS[name](amqp_uri)
    relay = OutboxRelay(store, publisher, SOURCE, {"credited"})
    broker = oldest_pid_named("beam.smp")
    cpu = CpuWindow([os.getpid()] + ([broker] if broker else []))
    cpu.start()
    began = time.perf_counter()
    published = relay.drain()
    elapsed = time.perf_counter() - began
    used, machine = cpu.stop()
    relay.release()
    publisher.close()
    if published != count:
        raise BenchError(f"{name}: published {published} of {count}")
    return {
        "publisher": name, "events": count, "seconds": elapsed, "events_per_s": count / elapsed,
        "bench_cpu_pct": used[os.getpid()], "broker_cpu_pct": used.get(broker), "machine_cpu_pct": machine,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events in the log (5000)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per publisher; the median is shown (3)")
    parser.add_argument("--streams", type=int, default=100, help="streams the events are spread over (100)")
    parser.add_argument("--run", type=int, default=1, help="events of one stream per transaction (1)")
    parser.add_argument("--publishers", default=",".join(PUBLISHERS),
                        type=lambda text: [p.strip() for p in text.split(",") if p.strip()])
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="panel-bench-outbox-"))
    vhost = Vhost()
    runs = {name: [] for name in args.publishers}
    try:
        vhost.create()
        with Connection(vhost.amqp_uri) as connection:
            Queue(QUEUE, exchange=event_exchange(SOURCE), routing_key="#", durable=True)(connection.channel()).declare()
        store, _ = make_store(f"sqlite:///{workdir / 'ledger.db'}")
        print(f"[bench] vhost {vhost.name}; writing {args.events} events ...", flush=True)
        fill(store, args.events, args.streams, args.run)
        for round_ in range(args.repeat):
            for name in args.publishers:
                result = measure(store, vhost.amqp_uri, name, args.events)
                runs[name].append(result)
                print(f"[bench] pass {round_ + 1}: {name:<11} {result['events_per_s']:8.0f} events/s", flush=True)
    except BenchError as error:
        print(f"[bench] {error}", file=sys.stderr)
        return 1
    finally:
        vhost.delete()
        shutil.rmtree(workdir, ignore_errors=True)

    medians = []
    for name, results in runs.items():
        middle = sorted(results, key=lambda r: r["events_per_s"])[len(results) // 2]
        medians.append(dict(middle, passes=[round(r["events_per_s"]) for r in results]))
    floor = next((m for m in medians if m["publisher"] == "unconfirmed"), None)
    base = next((m for m in medians if m["publisher"] == "one-by-one"), None)
    print()
    print(f"Event publishing through OutboxRelay.drain() — {args.events} persistent events "
          f"({args.streams} streams, {args.run} per transaction) to one durable queue, median of "
          f"{args.repeat} passes; {os.cpu_count()} cores")
    headers = ["publisher", "events/s", "passes", "vs unconfirmed", "vs one-by-one", "bench cpu%", "broker cpu%",
               "machine cpu%"]
    rows = [[m["publisher"], fmt(m["events_per_s"], ".0f"), " ".join(map(str, m["passes"])),
             fmt(m["events_per_s"] / floor["events_per_s"] if floor else None, ".2f"),
             fmt(m["events_per_s"] / base["events_per_s"] if base else None, ".2f"),
             fmt(m["bench_cpu_pct"], ".0f"), fmt(m["broker_cpu_pct"], ".0f"), fmt(m["machine_cpu_pct"], ".0f")]
            for m in medians]
    print(table(headers, rows))
    print()
    print(json.dumps({"benchmark": "outbox", "events": args.events, "repeat": args.repeat,
                      "streams": args.streams, "run": args.run,
                      "results": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}
                                  for m in medians]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
