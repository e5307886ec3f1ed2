"""Event store rates: appends (single, batched, 4 concurrent writers) and replay.

    python -m bench.eventstore [--seconds 5] [--warmup 1] [--backends sqlite,postgres]

For each backend — a SQLite file in a temporary folder, and a temporary PostgreSQL database
``panel_bench_<hex>`` on 127.0.0.1:5432 (dropped at the end; skipped with a notice when no
server answers) — it builds the store the services use (``common.service.ServiceSchema``
with the operations projection, plus the test domain's ``balances`` projection, which
updates one row per event) and measures:

    single      one event per transaction (``store.append``), round-robin over 16 streams
    batch10     10 events per transaction (one ``store.append`` of 10 events)
    writers4    4 OS processes (``python -m bench.eventstore --writer``), each with its own
                engine and 4 streams of its own, one event per transaction: total events/s
    read_after  the whole log read with ``store.read_after(position, limit=1000)``, in full
                passes until the time is up
    rebuild     ``store.rebuild_projections()`` once over the whole log

The process is monkey-patched by eventlet first, as every service is (psycopg2 becomes
cooperative). Aims on SQLite (printed, not asserted): >= 2,000 single-event appends/s and
>= 100,000 replayed events/s.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # noqa: E402 — must precede every other import

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.measure import CpuWindow, fmt, latency_ms, pids_named, table  # noqa: E402
from common.db import create_engine  # noqa: E402
from common.eventstore import NewEvent, utcnow  # noqa: E402
from tests.support import make_schema  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgres")
STREAMS = 16
BATCH = 10
WRITERS = 4
READ_LIMIT = 1000
MIN_REPLAY_EVENTS = 50_000
TOPUP_STREAMS = 1_000
AIM_SINGLE_APPENDS = 2_000
AIM_REPLAY = 100_000
NOISY_OTHER_CPU_PCT = 25


class BenchError(RuntimeError):
    pass


class CpuWatch:
    """CPU over a measured window, as % of one core: this benchmark's processes (this one
    and any writer processes), the PostgreSQL server processes, and everything else on the
    machine ("other": a noise indicator — another program was busy)."""

    def __init__(self, postgres, extra_pids=()):
        self.postgres = postgres
        self.own = [os.getpid(), *extra_pids]
        self.database = []
        self.window = None
        self.cpu = {"bench_cpu_pct": None, "db_cpu_pct": None, "other_cpu_pct": None}

    def start(self):
        self.database = pids_named("postgres") if self.postgres else []
        self.window = CpuWindow(self.own + self.database)
        self.window.start()

    def stop(self):
        if self.window is None:
            return self.cpu
        used, machine = self.window.stop()

        def total(pids):
            return sum(used[pid] or 0.0 for pid in pids)

        own, database = total(self.own), total(self.database)
        self.cpu = {
            "bench_cpu_pct": own,
            "db_cpu_pct": database if self.postgres else None,
            "other_cpu_pct": None if machine is None else max(machine - own - database, 0.0),
        }
        return self.cpu


def credited(amount=1):
    return NewEvent("credited", {"amount": amount, "note": "bench"})


def open_store(url, create=False):
    schema, _balances = make_schema("bench")
    engine = create_engine(url)
    if create:
        schema.metadata.create_all(engine)
    return schema.create_store(engine)


# -- timed append loops ----------------------------------------------------------------------


class Streams:
    """Round-robin over a few streams, tracking each one's version (no conflicts)."""

    def __init__(self, prefix, count):
        self.names = [f"{prefix}-{i}" for i in range(count)]
        self.versions = dict.fromkeys(self.names, 0)
        self.turn = 0

    def next(self):
        name = self.names[self.turn % len(self.names)]
        self.turn += 1
        return name, self.versions[name]

    def advanced(self, name, by):
        self.versions[name] += by


def timed_appends(store, streams, events_per_tx, warmup, seconds, start_at=None, watch=None):
    """Append ``events_per_tx`` events per transaction for ``warmup`` + ``seconds``; only
    transactions that commit inside the measured window count. Returns the events counted,
    their transactions' durations, and the longest transaction that overlapped the window
    (one stuck waiting for a lock may end after it)."""
    start = time.perf_counter() if start_at is None else start_at
    window_start, window_end = start + warmup, start + warmup + seconds
    events = [credited() for _ in range(events_per_tx)]
    latencies = []
    count = 0
    longest = 0.0
    while True:
        began = time.perf_counter()
        if watch is not None and watch.window is None and began >= window_start:
            watch.start()
        if began >= window_end:
            break
        name, version = streams.next()
        store.append(name, version, events)
        streams.advanced(name, events_per_tx)
        ended = time.perf_counter()
        if window_start <= ended <= window_end:
            latencies.append(ended - began)
            count += events_per_tx
        if ended >= window_start:
            longest = max(longest, ended - began)
    if watch is not None:
        watch.stop()
    return count, latencies, longest


def phase_result(name, events, seconds, latencies, **extra):
    p50, p99 = latency_ms(latencies)
    return {"measurement": name, "events": events, "seconds": round(seconds, 3),
            "events_per_s": events / seconds if seconds else None,
            "tx_p50_ms": p50, "tx_p99_ms": p99, **extra}


# -- 4 concurrent writers (OS processes) -----------------------------------------------------


def run_writer(url, writer_id):
    """Child: wait for "go <start> <warmup> <seconds>" on stdin, append, print a JSON line."""
    store = open_store(url)
    streams = Streams(f"writer{writer_id}-{uuid.uuid4().hex[:6]}", 4)
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if not line or line[0] != "go":
        return 1
    start_epoch, warmup, seconds = float(line[1]), float(line[2]), float(line[3])
    # Translate the shared wall-clock start into this process's perf_counter.
    start = time.perf_counter() + (start_epoch - time.time())
    while time.perf_counter() < start:
        time.sleep(0.001)
    count, latencies, longest = timed_appends(store, streams, 1, warmup, seconds, start_at=start)
    p50, p99 = latency_ms(latencies)
    print(json.dumps({"writer": writer_id, "events": count, "tx_p50_ms": p50, "tx_p99_ms": p99,
                      "tx_max_ms": longest * 1000}), flush=True)
    store.engine.dispose()
    return 0


def concurrent_writers(url, warmup, seconds, workdir):
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    children = []
    try:
        for writer_id in range(WRITERS):
            log = open(Path(workdir) / f"writer{writer_id}.log", "wb")
            children.append(subprocess.Popen(
                [sys.executable, "-m", "bench.eventstore", "--writer", url, "--writer-id", str(writer_id)],
                cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, start_new_session=True,
            ))
            log.close()
        for writer_id, child in enumerate(children):
            if child.stdout.readline().strip() != "ready":
                raise BenchError(f"writer {writer_id} did not start; see {workdir}/writer{writer_id}.log")
        start = time.time() + 0.3
        for child in children:
            child.stdin.write(f"go {start} {warmup} {seconds}\n")
            child.stdin.flush()
        watch = CpuWatch(url.startswith("postgresql"), [child.pid for child in children])
        time.sleep(max(start + warmup - time.time(), 0))
        watch.start()
        time.sleep(max(start + warmup + seconds - time.time(), 0))
        watch.stop()
        answers = []
        for writer_id, child in enumerate(children):
            line = child.stdout.readline()
            if not line:
                raise BenchError(f"writer {writer_id} failed; see {workdir}/writer{writer_id}.log:\n"
                                 + (Path(workdir) / f"writer{writer_id}.log").read_text(errors="replace")[-2000:])
            answers.append(json.loads(line))
            child.wait(30)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    total = sum(a["events"] for a in answers)
    p50s = [a["tx_p50_ms"] for a in answers if a["tx_p50_ms"] is not None]
    p99s = [a["tx_p99_ms"] for a in answers if a["tx_p99_ms"] is not None]
    result = phase_result("writers4", total, seconds, [], per_writer=[a["events"] for a in answers],
                          tx_max_ms=max(a["tx_max_ms"] for a in answers), **watch.cpu)
    # Per-writer percentiles: the median writer's p50 and the worst writer's p99.
    result["tx_p50_ms"] = sorted(p50s)[len(p50s) // 2] if p50s else None
    result["tx_p99_ms"] = max(p99s) if p99s else None
    return result


# -- replay ----------------------------------------------------------------------------------


def top_up(store, minimum, streams=TOPUP_STREAMS):
    """Bulk-insert events straight into the log (not through ``append``, which would take
    minutes on a slow backend) until it holds ``minimum`` events, so the replay measures
    something. They are spread over ``streams`` new streams, like many small aggregates
    (a single huge stream makes a PostgreSQL rebuild update one projection row tens of
    thousands of times in one transaction, which is slower per event). Returns how many
    were added."""
    missing = minimum - count_events(store)
    if missing <= 0:
        return 0
    events = store.tables.events
    prefix = f"topup-{uuid.uuid4().hex[:6]}"
    now = utcnow()
    added = 0
    with store.engine.begin() as conn:
        while added < missing:
            rows = []
            for index in range(added, min(added + 5000, missing)):
                rows.append({
                    "stream_id": f"{prefix}-{index % streams}", "version": index // streams + 1,
                    "type": "credited", "data": {"amount": 1, "note": "bench"},
                    "metadata": {"event_id": uuid.uuid4().hex}, "recorded_at": now,
                })
            conn.execute(events.insert(), rows)
            added += len(rows)
    return added


def count_events(store):
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.tables.events)).scalar_one()


def replay(store, seconds):
    """Full passes of ``read_after`` over the log until ``seconds`` are up (at least one)."""
    total = passes = 0
    batch_latencies = []
    watch = CpuWatch(store.engine.dialect.name == "postgresql")
    watch.start()
    started = time.perf_counter()
    while True:
        position = 0
        while True:
            began = time.perf_counter()
            chunk = store.read_after(position, limit=READ_LIMIT)
            if not chunk:
                break
            batch_latencies.append(time.perf_counter() - began)
            total += len(chunk)
            position = chunk[-1].position
        passes += 1
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    result = phase_result("read_after", total, elapsed, batch_latencies, passes=passes, **watch.stop())
    # Here the latencies are per batch of READ_LIMIT events, not per transaction.
    result["batch_p50_ms"], result["batch_p99_ms"] = result.pop("tx_p50_ms"), result.pop("tx_p99_ms")
    return result


def rebuild(store):
    watch = CpuWatch(store.engine.dialect.name == "postgresql")
    watch.start()
    started = time.perf_counter()
    replayed, _snapshot = store.rebuild_projections()
    elapsed = time.perf_counter() - started
    # One transaction: its duration is "seconds"; no percentiles.
    return phase_result("rebuild", replayed, elapsed, [], **watch.stop())


# -- one backend -----------------------------------------------------------------------------


def run_backend(backend, url, args, workdir):
    store = open_store(url, create=True)
    results = []
    try:
        print(f"[bench] {backend}: single-event appends ...", flush=True)
        watch = CpuWatch(backend == "postgres")
        count, latencies, _ = timed_appends(
            store, Streams("single", STREAMS), 1, args.warmup, args.seconds, watch=watch
        )
        results.append(phase_result("single", count, args.seconds, latencies, **watch.cpu))

        print(f"[bench] {backend}: {BATCH} events per transaction ...", flush=True)
        watch = CpuWatch(backend == "postgres")
        count, latencies, _ = timed_appends(
            store, Streams("batch", STREAMS), BATCH, args.warmup, args.seconds, watch=watch
        )
        results.append(phase_result(f"batch{BATCH}", count, args.seconds, latencies, **watch.cpu))

        print(f"[bench] {backend}: {WRITERS} concurrent writer processes ...", flush=True)
        results.append(concurrent_writers(url, args.warmup, args.seconds, workdir))

        added = top_up(store, args.replay_events)
        log_size = count_events(store)
        print(f"[bench] {backend}: replaying the log ({log_size} events"
              + (f", {added} bulk-inserted to reach {args.replay_events}" if added else "") + ") ...", flush=True)
        result = replay(store, args.seconds)
        result["log_events"] = log_size
        results.append(result)
        print(f"[bench] {backend}: rebuild_projections ...", flush=True)
        result = rebuild(store)
        result["log_events"] = log_size
        results.append(result)
    finally:
        store.engine.dispose()
    for result in results:
        result["backend"] = backend
    return results


class Postgres:
    """A temporary database on the server at ``PG_ADMIN_URL``."""

    def __init__(self):
        self.name = f"panel_bench_{uuid.uuid4().hex[:12]}"
        self.admin = None
        self.created = False

    def available(self):
        try:
            engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
            with engine.connect():
                pass
            engine.dispose()
            return None
        except Exception as error:  # any failure means "no server here"
            return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"

    def create(self):
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self):
        if self.created:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
        if self.admin is not None:
            self.admin.dispose()


# -- report ----------------------------------------------------------------------------------


def report(results, args, notices):
    print()
    print(f"Event store — {args.seconds:g} s measured after {args.warmup:g} s warm-up per append row; "
          f"{os.cpu_count()} cores; eventlet-patched process")
    headers = ["backend", "measurement", "events", "seconds", "events/s", "p50 ms", "p99 ms",
               "bench cpu%", "db cpu%", "other cpu%", "notes"]
    rows = []
    for r in results:
        if r["measurement"] == "read_after":
            p50, p99 = r["batch_p50_ms"], r["batch_p99_ms"]
            notes = f"per batch of {READ_LIMIT}; {r['passes']} pass(es) over {r['log_events']} events"
        elif r["measurement"] == "rebuild":
            p50, p99 = None, None
            notes = f"one transaction over {r['log_events']} events (its duration: seconds)"
        elif r["measurement"] == "writers4":
            p50, p99 = r["tx_p50_ms"], r["tx_p99_ms"]
            notes = ("per tx (median writer p50, worst writer p99); events per process: "
                     + "/".join(map(str, r["per_writer"])) + f"; longest tx {r['tx_max_ms']:,.0f} ms")
        else:
            p50, p99 = r["tx_p50_ms"], r["tx_p99_ms"]
            notes = "per transaction"
        rows.append([r["backend"], r["measurement"], r["events"], fmt(r["seconds"], ".2f"),
                     fmt(r["events_per_s"], ",.0f"), fmt(p50, ".3f"), fmt(p99, ".3f"),
                     fmt(r.get("bench_cpu_pct"), ".0f"), fmt(r.get("db_cpu_pct"), ".0f"),
                     fmt(r.get("other_cpu_pct"), ".0f"), notes])
    print(table(headers, rows, right=range(2, 10)))
    noisy = [r for r in results if (r.get("other_cpu_pct") or 0) > NOISY_OTHER_CPU_PCT]
    if noisy:
        print(f"! other programs used more than {NOISY_OTHER_CPU_PCT}% CPU during "
              + ", ".join(f"{r['backend']} {r['measurement']}" for r in noisy)
              + ": those rows are disturbed; run again on a quiet machine")
    aims = []
    sqlite = {r["measurement"]: r for r in results if r["backend"] == "sqlite"}
    if sqlite:
        print()
        print("Aims on SQLite (not assertions):")
        for key, label, aim in (("single", "single-event appends/s", AIM_SINGLE_APPENDS),
                                ("read_after", "replayed events/s (read_after)", AIM_REPLAY)):
            value = sqlite[key]["events_per_s"]
            met = value is not None and value >= aim
            aims.append({"aim": label, "target": aim, "value": value, "met": met})
            print(f"  {label:<32} {value:>12,.0f}  aim >= {aim:,}: {'met' if met else 'NOT met'}")
    for notice in notices:
        print(f"NOTICE: {notice}")
    print()
    print(json.dumps({
        "benchmark": "eventstore", "seconds": args.seconds, "warmup": args.warmup,
        "cores": os.cpu_count(), "writers": f"{WRITERS} OS processes",
        "results": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in results],
        "aims": aims, "notices": notices,
    }))


# -- main ------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.eventstore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per append row (1)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
                        help="comma-separated: sqlite,postgres")
    parser.add_argument("--replay-events", type=int, default=MIN_REPLAY_EVENTS,
                        help=f"bulk-insert events before the replay until the log has this many ({MIN_REPLAY_EVENTS})")
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    parser.add_argument("--writer-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(BACKENDS)}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.writer:
        return run_writer(args.writer, args.writer_id)

    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    workdir = tempfile.mkdtemp(prefix="panel-bench-eventstore-")
    postgres = Postgres()
    results, notices = [], []
    code = 0
    try:
        for backend in args.backends:
            if backend == "sqlite":
                url = f"sqlite:///{Path(workdir) / 'bench.db'}"
            else:
                problem = postgres.available()
                if problem:
                    notice = f"PostgreSQL skipped: no server at {PG_ADMIN_URL} ({problem})"
                    print(f"[bench] {notice}", flush=True)
                    notices.append(notice)
                    continue
                url = postgres.create()
                print(f"[bench] postgres: temporary database {postgres.name}", flush=True)
            results.extend(run_backend(backend, url, args, workdir))
        report(results, args, notices)
    except KeyboardInterrupt:
        print("\n[bench] interrupted; cleaning up", file=sys.stderr, flush=True)
        code = 130
    except BenchError as error:
        print(f"[bench] {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            postgres.drop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
