"""From an operation's success being committed to its live notification reaching the browser.

    python -m bench.notify_latency [--operations 500] [--in-flight 1,4,8] [--pool 16]
                                   [--action power_on] [--warmup-operations 10] [--keep-logs]

Boots the whole stack (``bench.stack``: ``python -m deploy.devstack`` on a private RabbitMQ
vhost, a temporary var dir and free ports) with ``BMC_POWER_DELAY=0``, so the emulated
servers change power at once. Logs in over HTTP as the second demo customer (no
two-factor), gives them ``--pool`` servers (the two demo ones, plus servers made with
``inventory.provision_server`` over nameko RPC that share the demo servers' BMC bindings,
read from the inventory database's ``servers.bmc``) and opens
``GET /api/v1/notifications/stream`` (Server-Sent Events), read by a greenthread of this
process (monkey-patched by eventlet) with ``requests`` (``stream=True``).

Then, for each ``--in-flight`` level *k* (one row each), *k* client greenthreads run
operations, each on its own share of the servers in turn (a server has one operation at a
time: a second one would be 409): ``POST /api/v1/servers/{id}/actions`` with ``--action``
(``power_on`` on a server that is on succeeds quickly; ``reboot`` also works), then wait
for that operation's ``success`` frame on the stream before starting the next, until
``--warmup-operations`` (unmeasured) plus ``--operations`` have been run. So *k*
operations are in flight at any time: 1 is the latency of an otherwise idle stack; 8 about
saturates a 2-core machine. Afterwards each measured operation's ``finished_at`` is read
with ``GET /api/v1/operations/{id}``.

Measured per operation, all on this machine's clock:

    latency    the success frame's arrival (time.time() when its ``data:`` line was read)
               minus the operation's ``finished_at`` (stamped by the inventory service just
               before the commit of ``operation_succeeded``)
    to notify  the notification's ``created_at`` (the notify service's clock, when it
               recorded the entry) minus ``finished_at``: inventory outbox relay, broker,
               notify's handler
    to client  arrival minus ``created_at``: notify's commit, its outbox relay, broker,
               the gateway's broadcast handler, the SSE stream

Aims, printed with "met" / "NOT met" (they are not assertions): p50 ≤ 50 ms, p99 ≤ 250 ms.
The stack is stopped and the vhost deleted at the end, also on Ctrl-C.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from eventlet.event import Event  # noqa: E402

from bench.measure import CpuWindow, fmt, oldest_pid_named, percentile, table  # noqa: E402
from bench.stack import (  # noqa: E402
    BenchError,
    BenchStack,
    install_signal_handlers,
    login_password,
    run_on_stack,
    settle,
)

AIM_P50_MS = 50
AIM_P99_MS = 250
OPERATION_TIMEOUT = 120
ACTIONS = ("power_on", "reboot")
NOISY_OTHER_CPU_PCT = 25


def timestamp(iso):
    return datetime.fromisoformat(iso).timestamp()


class StreamReader:
    """Reads the SSE stream in a greenthread; remembers when each frame's data arrived and
    wakes whoever waits for an operation's final frame."""

    def __init__(self, session, url):
        self.session = session
        self.url = url
        self.frames = {}  # (operation_id, level) -> (arrival, item)
        self.waiters = {}  # operation_id -> Event
        self.connected = Event()
        self.error = None
        self._response = None
        self._thread = None

    def start(self):
        self._response = self.session.get(self.url, stream=True, timeout=(10, None),
                                          headers={"Accept": "text/event-stream"})
        if self._response.status_code != 200:
            raise BenchError(f"the stream answered {self._response.status_code}: {self._response.text[:300]}")
        self._thread = eventlet.spawn(self._read)
        # The ": connected" comment: the gateway has registered the stream.
        if not self.connected.wait(30):
            raise BenchError(f"the notification stream did not connect ({self.error or 'no answer in 30 s'})")

    def _read(self):
        try:
            for line in self._response.iter_lines(chunk_size=8192, decode_unicode=True):
                arrival = time.time()
                if line.startswith(": connected") and not self.connected.ready():
                    self.connected.send(True)
                if not line.startswith("data: "):
                    continue
                item = json.loads(line[6:])
                operation_id = item.get("operation_id")
                if operation_id is None:
                    continue
                self.frames.setdefault((operation_id, item["level"]), (arrival, item))
                if item["level"] in ("success", "error"):
                    waiter = self.waiters.get(operation_id)
                    if waiter is not None and not waiter.ready():
                        waiter.send(item["level"])
        except Exception as error:  # the stream broke: every waiter learns it
            self.error = f"{type(error).__name__}: {error}"
            if not self.connected.ready():
                self.connected.send(False)
            for waiter in list(self.waiters.values()):
                if not waiter.ready():
                    waiter.send("stream broken")

    def waiter(self, operation_id):
        """An Event sent with the final level of ``operation_id`` (register before asking)."""
        event = self.waiters.setdefault(operation_id, Event())
        final = self.frames.get((operation_id, "success")) or self.frames.get((operation_id, "error"))
        if final is not None and not event.ready():
            event.send(final[1]["level"])
        return event

    def close(self):
        if self._thread is not None:
            self._thread.kill()
        if self._response is not None:
            self._response.close()


def customer_servers(stack, session):
    answer = session.get(f"{stack.api}/servers", params={"per_page": 500}, timeout=30)
    answer.raise_for_status()
    return answer.json()["items"]


def provision_more(stack, user_id, count):
    """``count`` more servers for ``user_id``, on the BMC bindings of their demo servers."""
    if count <= 0:
        return
    from common.db import create_engine
    from services.inventory.projections import servers as servers_table

    engine = create_engine(stack.info["databases"]["inventory"])
    try:
        with engine.connect() as conn:
            bindings = [row[0] for row in conn.execute(
                sa.select(servers_table.c.bmc).where(servers_table.c.user_id == user_id)
                .order_by(servers_table.c.number))]
    finally:
        engine.dispose()
    if not bindings:
        raise BenchError("the customer has no server whose BMC binding could be shared")
    hardware = {"cpu": "AMD Ryzen 5 3600", "cpu_count": 1, "ram_gb": 64, "disks": ["2x 512 GB NVMe"], "gpu": None}
    with stack.rpc(timeout=60) as cluster:
        for n in range(count):
            cluster.inventory.provision_server(
                user_id, ("NL", "US", "DE", "SG")[n % 4], "Dedicated AX41", hardware,
                [f"198.51.100.{n + 1}"], "ubuntu-24.04", bindings[n % len(bindings)], "2026-12-31", "49.00",
                f"bench-notify-{n + 1}")


def run_operations(stack, session, reader, server_ids, in_flight, action, warmup, total):
    """``in_flight`` client greenthreads; client i runs operations one after the other on
    the servers ``server_ids[i::in_flight]`` in turn (so no two clients share a server and
    every server of the pool gets used), until ``warmup`` + ``total`` have been started.
    Returns ([(operation_id, server_id, final level, warm-up?)], [problems])."""
    url = f"{stack.api}/servers/{{}}/actions"
    planned = warmup + total
    started = [0]
    done = []
    problems = []

    def worker(own_servers):
        client = requests.Session()  # one keep-alive connection per client, the customer's token
        client.headers.update(session.headers)
        turn = 0
        try:
            while started[0] < planned:
                index = started[0]
                started[0] += 1
                server_id = own_servers[turn % len(own_servers)]
                turn += 1
                answer = client.post(url.format(server_id), json={"action": action}, timeout=60)
                if answer.status_code != 202:
                    problems.append(f"{server_id}: {answer.status_code} {answer.text[:200]}")
                    eventlet.sleep(0.5)
                    continue
                operation_id = answer.json()["operation"]["id"]
                final = reader.waiter(operation_id).wait(OPERATION_TIMEOUT) or "timed out"
                done.append((operation_id, server_id, final, index < warmup))
                if final not in ("success", "error"):
                    problems.append(f"{operation_id}: {final}")
                    if final == "stream broken":
                        return
        finally:
            client.close()

    pool = [eventlet.spawn(worker, server_ids[i::in_flight]) for i in range(in_flight)]
    for thread in pool:
        thread.wait()
    return done, problems


def stats(values_ms):
    ordered = sorted(values_ms)
    return {name: percentile(ordered, fraction) for name, fraction in
            (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))} | {
        "min": ordered[0] if ordered else None, "mean": sum(ordered) / len(ordered) if ordered else None}


def measure_level(args, stack, session, reader, server_ids, in_flight):
    """``--warmup-operations`` + ``--operations`` operations, ``in_flight`` at a time over
    ``server_ids``; the measured ones' latencies and the CPU used meanwhile."""
    pids = stack.info["processes"]
    broker = oldest_pid_named("beam.smp")
    cpu = CpuWindow([os.getpid()] + list(pids.values()) + ([broker] if broker else []))
    cpu.start()
    began = time.monotonic()
    done, problems = run_operations(stack, session, reader, server_ids, in_flight, args.action,
                                    args.warmup_operations, args.operations)
    wall = time.monotonic() - began
    used, machine = cpu.stop()
    if reader.error:
        problems.append(f"the stream broke: {reader.error}")

    samples, failed, missing = [], [], []
    for operation_id, _server_id, final, warm in done:
        if warm:
            continue
        if final != "success":
            failed.append((operation_id, final))
            continue
        operation = session.get(f"{stack.api}/operations/{operation_id}", timeout=30).json()
        frame = reader.frames.get((operation_id, "success"))
        if frame is None or not operation.get("finished_at"):
            missing.append(operation_id)
            continue
        arrival, item = frame
        finished = timestamp(operation["finished_at"])
        created = timestamp(item["created_at"])
        samples.append({"operation_id": operation_id, "latency_ms": (arrival - finished) * 1000,
                        "to_notify_ms": (created - finished) * 1000, "to_client_ms": (arrival - created) * 1000,
                        "run_ms": (finished - timestamp(operation["created_at"])) * 1000})

    known = [used.get(pid) for pid in [os.getpid()] + list(pids.values())] + ([used.get(broker)] if broker else [])
    other = None if machine is None or None in known else max(machine - sum(known), 0.0)
    cpu_by = {name: used.get(pid) for name, pid in pids.items()}
    result = {
        "in_flight": in_flight, "servers": len(server_ids), "measured": len(samples), "failed": len(failed),
        "missing": len(missing),
        "problems": problems, "first_failures": failed[:5], "seconds": wall,
        "ops_per_s": len(done) / wall if wall else None,
        "cpu_pct": {"bench": used.get(os.getpid()), "broker": used.get(broker) if broker else None,
                    "other": other, "machine": machine, **cpu_by},
    }
    for key in ("latency_ms", "to_notify_ms", "to_client_ms", "run_ms"):
        result[key] = stats([x[key] for x in samples])
    latency = result["latency_ms"]
    result["p50_met"] = bool(samples) and latency["p50"] <= AIM_P50_MS
    result["p99_met"] = bool(samples) and latency["p99"] <= AIM_P99_MS
    return result


def main_run(args, stack):
    session = requests.Session()
    customer = stack.user(1)
    token = login_password(session, stack.api, customer["username"], customer["password"])
    session.headers["Authorization"] = f"Bearer {token}"
    user_id = session.get(f"{stack.api}/auth/session", timeout=30).json()["user"]["id"]

    wanted = max(args.pool, max(args.in_flight))
    existing = customer_servers(stack, session)
    if len(existing) < wanted:
        print(f"[bench] provisioning {wanted - len(existing)} more servers for {customer['username']} "
              f"(sharing the demo servers' BMC bindings) ...", flush=True)
        provision_more(stack, user_id, wanted - len(existing))
    server_ids = [s["id"] for s in customer_servers(stack, session)][:wanted]

    settle(stack)  # the demo seed's and the set-up's events have travelled: an idle stack
    reader = StreamReader(requests.Session(), f"{stack.api}/notifications/stream")
    reader.session.headers.update(session.headers)
    reader.start()
    results = []
    try:
        for level in args.in_flight:
            print(f"[bench] {args.warmup_operations} + {args.operations} {args.action} operations, {level} at a "
                  f"time, over {len(server_ids)} servers ...", flush=True)
            results.append(measure_level(args, stack, session, reader, server_ids, level))
            stack.check()
            if reader.error:
                raise BenchError(f"the notification stream broke: {reader.error}")
    finally:
        reader.close()
    return results


def report(args, stack, results):
    cores = os.cpu_count()
    print()
    servers = results[0]["servers"] if results else 0
    print(f"Operation finished → its SSE frame: {args.operations} {args.action} operations per row after "
          f"{args.warmup_operations} unmeasured, on {servers} servers of one customer (each server one operation "
          f"at a time); BMC_POWER_DELAY=0; {cores} cores")
    headers = ["in flight", "count", "failed", "ops/s", "min ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms",
               f"p50≤{AIM_P50_MS}", f"p99≤{AIM_P99_MS}", "machine cpu%", "other cpu%"]
    rows = []
    for r in results:
        s = r["latency_ms"]
        rows.append([r["in_flight"], r["measured"], r["failed"] + r["missing"], fmt(r["ops_per_s"], ".1f")]
                    + [fmt(s[k], ".1f") for k in ("min", "p50", "p95", "p99", "max", "mean")]
                    + ["met" if r["p50_met"] else "NOT met", "met" if r["p99_met"] else "NOT met",
                       fmt(r["cpu_pct"]["machine"], ".0f"), fmt(r["cpu_pct"]["other"], ".0f")])
    print(table(headers, rows))
    print()
    print("where the time goes (ms, p50 / p99): to notify = finished_at → the notification's created_at "
          "(inventory commit, outbox relay, broker, notify handler); to client = created_at → frame arrival "
          "(notify commit, outbox relay, broker, gateway broadcast, SSE); the operation itself = created → finished")
    headers = ["in flight", "to notify", "to client", "operation itself", "inventory cpu%", "notify cpu%",
               "gateway cpu%", "bmc cpu%", "broker cpu%", "bench cpu%"]
    rows = []

    def pair(result, key):
        return f"{fmt(result[key]['p50'], '.1f')} / {fmt(result[key]['p99'], '.1f')}"

    for r in results:
        cpu = r["cpu_pct"]
        rows.append([r["in_flight"], pair(r, "to_notify_ms"), pair(r, "to_client_ms"), pair(r, "run_ms")]
                    + [fmt(cpu.get(name), ".0f")
                       for name in ("inventory", "notify", "gateway", "bmc", "broker", "bench")])
    print(table(headers, rows))
    print()
    for r in results:
        s = r["latency_ms"]
        if r["measured"]:
            print(f"  {r['in_flight']} in flight: p50 {s['p50']:.1f} ms — aim ≤ {AIM_P50_MS} ms "
                  f"{'met' if r['p50_met'] else 'NOT met'}; p99 {s['p99']:.1f} ms — aim ≤ {AIM_P99_MS} ms "
                  f"{'met' if r['p99_met'] else 'NOT met'}")
        else:
            print(f"  {r['in_flight']} in flight: no operation measured")
        if (r["cpu_pct"]["other"] or 0) > NOISY_OTHER_CPU_PCT:
            print(f"  ! other programs used {r['cpu_pct']['other']:.0f}% CPU during this row: it is disturbed; "
                  "run again on a quiet machine")
        for operation_id, final in r["first_failures"]:
            print(f"  ! {operation_id} ended {final}")
        if r["failed"] or r["missing"]:
            print(f"  ! {r['failed']} operations did not succeed, {r['missing']} without a success frame "
                  "or finished_at")
        for problem in r["problems"][:5]:
            print(f"  ! {problem}")
    print()

    def rounded(value):
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    summary = {
        "benchmark": "notify_latency", "operations": args.operations, "warmup_operations": args.warmup_operations,
        "action": args.action, "cores": cores, "boot_seconds": round(stack.boot_seconds, 2),
        "aim_p50_ms": AIM_P50_MS, "aim_p99_ms": AIM_P99_MS,
        "results": [rounded({k: v for k, v in r.items() if k not in ("first_failures", "problems")}
                            | {"problems": len(r["problems"])}) for r in results],
    }
    print(json.dumps(summary))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.notify_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=500, help="measured operations (500)")
    parser.add_argument("--warmup-operations", type=int, default=10, help="unmeasured operations first (10)")
    parser.add_argument("--in-flight", default="1,4,8",
                        type=lambda text: [int(p) for p in text.split(",") if p.strip()],
                        help="comma-separated numbers of operations kept in flight (clients), one row "
                             "each (1,4,8)")
    parser.add_argument("--pool", type=int, default=16,
                        help="servers the customer has (at least the largest --in-flight); each client "
                             "takes its own share of them in turn (16)")
    parser.add_argument("--action", default="power_on", choices=ACTIONS, help="the operation (power_on)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's folder (logs, databases)")
    args = parser.parse_args(argv)
    if args.operations < 1 or not args.in_flight or min(args.in_flight) < 1 or args.warmup_operations < 0:
        parser.error("need operations >= 1, in-flight levels >= 1, warmup-operations >= 0")
    if args.pool < 1:
        parser.error("need pool >= 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    install_signal_handlers()
    stack = BenchStack(extra_env={"BMC_POWER_DELAY": "0"}, keep=args.keep_logs, label="bench-notify")
    return run_on_stack(stack, lambda stack: report(args, stack, main_run(args, stack)),
                        booting=" (BMC_POWER_DELAY=0)")


if __name__ == "__main__":
    sys.exit(main())
