"""One customer with many servers: list, filter, search and export through the gateway.

    python -m bench.servers [--sizes 100,100000] [--export-rows 100000] [--repeat 200]
                            [--batch 1000] [--client http.client|requests] [--keep-logs]

Boots the whole stack (``bench.stack``: ``python -m deploy.devstack`` on a private RabbitMQ
vhost, a temporary var dir and free ports), registers one customer (``bench-servers``,
no two-factor; ``auth.register_user`` over nameko RPC) and logs in as them over HTTP.

Seeding. Servers are appended straight to the inventory service's database (its
``DATABASE_URL`` from ``stack.json``) with the service's own code: the store of
``services.inventory.projections.schema`` on ``common.db.create_engine``, events from
``services.inventory.domain.Server.provision`` (plus ``mark_overdue`` for overdue ones),
``--batch`` servers per ``store.transaction()``. The running inventory service reads the same
SQLite file (WAL), so its read models have them at once. Like any provisioned server, each
one then travels on: the inventory outbox relay publishes its ``server_provisioned``, billing
subscribes it (paid until 2099, so no invoice is due during the run) and notify records the
event as seen. Seeding is held back while the stack is far behind (inventory relay more
than 2,000 events behind, or more than 3,000 messages queued), so that it runs alongside
that work rather than starving it; the benchmark then waits until the stack has settled (every service's relay has
read its whole log and every queue of the vhost is empty) before measuring, and reports how
long that took. Numbers are SRV-200001… (unique, all of one length); locations cycle NL,
US, DE, SG; one server in 10 of each location is overdue; tags are ``<role>-<n>`` (unique);
addresses are unique IPv4 (every 4th server also has an IPv6 address).

(a) at each of ``--sizes`` (the customer grows from one to the next): each query below is sent
``--repeat`` times, one at a time, over one keep-alive connection (``http.client``, like
``bench.rpc``'s HTTP paths; ``--client requests`` for a ``requests.Session``, which adds about
a millisecond of the client's own CPU per call), after 5 unmeasured ones: p50, p99, max, and the CPU the gateway and the inventory service spent per request. Then
the same queries side by side at the smallest and the largest size, with the ratio of their
p99s (issue 21: flat means at most 1.5). The last page is asked for twice: by ``cursor``
(the previous page's ``next_cursor``: keyset) and by ``page`` (offset, documented as
slower for deep pages).

(b) export: the customer grows to ``--export-rows`` servers, then
``GET /api/v1/servers/export?format=csv`` and ``?format=json`` are each streamed to
/dev/null: total time, time to the first byte, rows, bytes, and the memory of the gateway and
inventory processes (pids from ``stack.json``): VmHWM (peak RSS since the process started)
and VmRSS before and after, and the highest VmRSS sampled every 20 ms during the download.

Nothing is asserted; the stack is stopped and the vhost deleted at the end, also on Ctrl-C.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.measure import CpuWindow, fmt, oldest_pid_named, process_cpu_seconds, table  # noqa: E402
from bench.stack import (  # noqa: E402
    BenchError,
    BenchStack,
    Settle,
    install_signal_handlers,
    login_password,
    ms_stats,
    print_settle_progress,
    proc_status,
    run_on_stack,
    settle,
)

CUSTOMER = {"username": "bench-servers", "password": "bench-servers-password-1", "email": "servers@bench.local"}
LOCATIONS = ("NL", "US", "DE", "SG")
ROLES = ("web", "db", "cache", "worker")
PLANS = {"AX41": "49.00", "AX102": "119.00", "EX130": "199.00", "GEX44": "184.00"}
HARDWARE = {"cpu": "AMD Ryzen 5 3600", "cpu_count": 1, "ram_gb": 64, "disks": ["2x 512 GB NVMe"], "gpu": None}
FIRST_NUMBER = 200001
# Far ahead: billing subscribes every server (from server_provisioned) but issues no invoice
# during the run.
PAID_UNTIL = "2099-12-31"
OVERDUE_EVERY = 10
WARMUP_REQUESTS = 5
SETTLE_TIMEOUT = 600
NOISY_OTHER_CPU_PCT = 25
MAX_RELAY_LAG = 2000
MAX_QUEUED = 3000
MEMORY_SAMPLE_SECONDS = 0.02


# -- seeding ------------------------------------------------------------------------------------


def server_spec(index):
    """The ``index``-th seeded server (0-based): deterministic, unique number, tag and IPs."""
    n = index + 1
    plan = list(PLANS)[index % len(PLANS)]
    ips = [f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"]
    if index % 4 == 0:
        ips.append(f"2a01:4f8:{(n >> 16) & 0xffff:x}:{n & 0xffff:x}::2")
    return {
        "number": f"SRV-{FIRST_NUMBER + index}", "location": LOCATIONS[index % len(LOCATIONS)],
        "plan": f"Dedicated {plan}", "price_month": PLANS[plan], "ips": ips,
        "tag": f"{ROLES[index % len(ROLES)]}-{n}",
        # every 10th server of each location is overdue
        "overdue": (index // len(LOCATIONS)) % OVERDUE_EVERY == OVERDUE_EVERY - 1,
    }


class Seeder:
    """Appends servers of one customer to the inventory database with the service's code."""

    def __init__(self, database_url, user_id):
        from common.db import create_engine
        from services.inventory.projections import schema

        self.engine = create_engine(database_url)
        self.store = schema.create_store(self.engine)
        self.user_id = user_id
        self.bmc = self.demo_bmc()
        self.count = 0

    def grow_to(self, total, batch, progress=None, backpressure=None):
        """Append servers until the customer has ``total``; ``backpressure()`` is called
        before each batch and may block (to let the stack keep up)."""
        from common import context
        from services.inventory import domain

        began = time.perf_counter()
        start = self.count
        held = 0.0
        while self.count < total:
            if backpressure is not None:
                paused = time.perf_counter()
                backpressure()
                held += time.perf_counter() - paused
            end = min(self.count + batch, total)
            with self.store.transaction() as tx:
                for index in range(self.count, end):
                    spec = server_spec(index)
                    server_id = context.new_id()
                    events = domain.Server.provision(
                        server_id, user_id=self.user_id, number=spec["number"], location=spec["location"],
                        plan=spec["plan"], hardware=HARDWARE, ips=spec["ips"], os="ubuntu-24.04", bmc=self.bmc,
                        paid_until=PAID_UNTIL, price_month=spec["price_month"], tag=spec["tag"])
                    if spec["overdue"]:
                        events += domain.Server(server_id, status=domain.ACTIVE).mark_overdue("invoice unpaid")
                    tx.append(f"server-{server_id}", 0, events)
            self.count = end
            if progress:
                progress(self.count)
        seconds = time.perf_counter() - began
        return {"servers": total - start, "seconds": seconds, "held_seconds": held,
                "servers_per_s": (total - start) / seconds if seconds else None}

    def demo_bmc(self):
        """The BMC binding of an existing (demo) server: the seeded servers share it."""
        from services.inventory.projections import servers

        with self.engine.connect() as conn:
            bmc = conn.execute(sa.select(servers.c.bmc).order_by(servers.c.number).limit(1)).scalar()
        if not bmc:
            raise BenchError("no demo server in the inventory database to take a BMC binding from")
        return bmc

    def close(self):
        self.engine.dispose()


class Backpressure:
    """Holds the seeding back while the stack is far behind it: the inventory outbox relay
    more than ``MAX_RELAY_LAG`` events behind, or more than ``MAX_QUEUED`` messages waiting
    in the vhost's queues (billing and notify consuming ``server_provisioned``). Seeding then
    runs alongside the stack's own work instead of ahead of it: without it the seeding
    transactions starve the relay of SQLite's write lock and everything queues up behind."""

    def __init__(self, stack):
        self.stack = stack
        self.probe = Settle(stack)

    def __call__(self):
        while True:
            lag = self.probe.relay_lags().get("inventory", 0)
            queued = sum(self.probe.queue_depths().values()) if lag <= MAX_RELAY_LAG else None
            if lag <= MAX_RELAY_LAG and queued <= MAX_QUEUED:
                return
            self.stack.check()
            time.sleep(0.2)

    def close(self):
        self.probe.close()


class OtherCpu:
    """CPU used meanwhile by programs outside this benchmark (not the benchmark, not the
    stack's processes, not RabbitMQ): a noise indicator, % of one core."""

    def __init__(self, stack):
        self.broker = oldest_pid_named("beam.smp")
        self.pids = [os.getpid()] + list(stack.info["processes"].values()) + ([self.broker] if self.broker else [])
        self.window = CpuWindow(self.pids)

    def start(self):
        self.window.start()

    def stop(self):
        used, machine = self.window.stop()
        known = [used.get(pid) for pid in self.pids]
        return None if machine is None or None in known else max(machine - sum(known), 0.0)


# -- (a) lists, filters, searches ---------------------------------------------------------------


def queries(servers, last_page_cursor):
    """(name, query parameters): the rows of part (a)."""
    probe = server_spec(min(servers - 1, servers // 2))  # a server in the middle of the range
    pages = max((servers + 49) // 50, 1)
    return [
        ("first page", {"per_page": 50}),
        ("location=NL", {"location": "NL", "per_page": 50}),
        ("status=overdue", {"status": "overdue", "per_page": 50}),
        ("NL + overdue", {"location": "NL", "status": "overdue", "per_page": 50}),
        ("last page cursor", {"per_page": 50, "cursor": last_page_cursor}),
        ("last page offset", {"per_page": 50, "page": pages}),
        ("sort=tag desc", {"sort": "tag", "order": "desc", "per_page": 50}),
        ("q=<tag>", {"q": probe["tag"], "per_page": 50}),
        ("q=<ip>", {"q": probe["ips"][0], "per_page": 50}),
        ("q=<number>", {"q": probe["number"], "per_page": 50}),
        ("q=<number prefix>", {"q": probe["number"][:-1], "per_page": 50}),
    ]


def last_page_cursor(session, stack, servers):
    """The ``cursor`` of the last page (the page before it answers it as ``next_cursor``)."""
    pages = max((servers + 49) // 50, 1)
    if pages < 2:
        return None
    answer = session.get(f"{stack.api}/servers", params={"per_page": 50, "page": pages - 1}, timeout=60).json()
    return answer["next_cursor"]


class KeepAliveClient:
    """GET requests over one keep-alive ``http.client`` connection, as ``bench.rpc``'s HTTP
    paths send them: ``requests`` spends about a millisecond of the client's own CPU per
    call on this machine (GET /healthz: 1.7 ms p50 through ``requests``, 0.7 ms through
    ``http.client``), which is not the gateway's time. ``--client requests`` measures with
    ``requests`` instead."""

    def __init__(self, api, authorization):
        split = urllib.parse.urlsplit(api)
        self.path = split.path
        self.headers = {"Authorization": authorization, "Accept": "application/json"}
        self.connection = http.client.HTTPConnection(split.hostname, split.port, timeout=60)

    def get(self, path, params):
        """``(status, body)`` of GET ``path`` (relative to the API's base) with ``params``."""
        self.connection.request("GET", f"{self.path}{path}?{urllib.parse.urlencode(params)}", headers=self.headers)
        answer = self.connection.getresponse()
        return answer.status, answer.read()

    def close(self):
        self.connection.close()


class RequestsClient:
    """The same GETs through a ``requests.Session`` (``--client requests``)."""

    def __init__(self, api, session):
        self.api, self.session = api, session

    def get(self, path, params):
        answer = self.session.get(f"{self.api}{path}", params=params, timeout=60)
        return answer.status_code, answer.content

    def close(self):
        """Nothing to close here: the session is the caller's (the export goes on to use it)."""


def measure_query(client, stack, name, params, repeat):
    pids = stack.info["processes"]
    total = None
    for _ in range(WARMUP_REQUESTS):
        status, body = client.get("/servers", params)
        if status != 200:
            raise BenchError(f"GET /servers {params} answered {status}: {body[:300]!r}")
        total = json.loads(body)["total"]
    cpu_before = {name_: process_cpu_seconds(pids[name_]) for name_ in ("gateway", "inventory")}
    other = OtherCpu(stack)
    other.start()
    latencies, errors = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        status, body = client.get("/servers", params)
        ended = time.perf_counter()
        if status == 200:
            latencies.append(ended - began)
        else:
            errors += 1
    other_cpu = other.stop()
    cpu_after = {name_: process_cpu_seconds(pids[name_]) for name_ in ("gateway", "inventory")}
    stats = ms_stats(latencies, (0.50, 0.99, 1.0))
    items = len(json.loads(body).get("items", [])) if status == 200 else None
    done = max(len(latencies) + errors, 1)
    return {
        "query": name, "params": params, "requests": len(latencies), "errors": errors, "total": total,
        "items": items, "p50_ms": stats[0.50], "p99_ms": stats[0.99], "max_ms": stats[1.0],
        "gateway_cpu_ms_per_req": (cpu_after["gateway"] - cpu_before["gateway"]) * 1000 / done,
        "inventory_cpu_ms_per_req": (cpu_after["inventory"] - cpu_before["inventory"]) * 1000 / done,
        "other_cpu_pct": other_cpu,
    }


# -- (b) export ---------------------------------------------------------------------------------


class MemoryWatch:
    """VmHWM/VmRSS of some processes before, during (sampled) and after a download."""

    def __init__(self, pids):
        self.pids = dict(pids)
        self.peak_rss = {name: 0 for name in self.pids}
        self._running = False
        self._thread = None

    def start(self):
        self.before = {name: proc_status(pid) for name, pid in self.pids.items()}
        for name, status in self.before.items():
            self.peak_rss[name] = status["VmRSS"] if status else 0
        self._running = True
        self._thread = eventlet.spawn(self._sample)

    def _sample(self):
        while self._running:
            for name, pid in self.pids.items():
                status = proc_status(pid)
                if status:
                    self.peak_rss[name] = max(self.peak_rss[name], status["VmRSS"])
            eventlet.sleep(MEMORY_SAMPLE_SECONDS)

    def stop(self):
        self._running = False
        if self._thread is not None:
            self._thread.wait()
        self.after = {name: proc_status(pid) for name, pid in self.pids.items()}
        report = {}
        for name in self.pids:
            before, after = self.before[name] or {}, self.after[name] or {}
            report[name] = {
                "rss_before_kib": before.get("VmRSS"), "hwm_before_kib": before.get("VmHWM"),
                "peak_rss_during_kib": self.peak_rss[name],
                "rss_after_kib": after.get("VmRSS"), "hwm_after_kib": after.get("VmHWM"),
                "rss_growth_kib": (self.peak_rss[name] - before["VmRSS"]) if before.get("VmRSS") else None,
                "hwm_growth_kib": (after["VmHWM"] - before["VmHWM"]) if before and after else None,
            }
        return report


class RowCounter:
    """Counts occurrences of ``marker`` in a byte stream split into arbitrary chunks."""

    def __init__(self, marker):
        self.marker = marker
        self.count = 0
        self._tail = b""

    def feed(self, chunk):
        data = self._tail + chunk
        self.count += data.count(self.marker)
        keep = len(self.marker) - 1
        self._tail = data[-keep:] if keep else b""  # shorter than the marker: never counted twice


def export(session, stack, fmt_):
    pids = {name: stack.info["processes"][name] for name in ("gateway", "inventory")}
    cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    watch = MemoryWatch(pids)
    counter = RowCounter(b"\n" if fmt_ == "csv" else b'"number": ')
    size = 0
    other = OtherCpu(stack)
    other.start()
    watch.start()
    began = time.perf_counter()
    first_byte = None
    try:
        with session.get(f"{stack.api}/servers/export", params={"format": fmt_}, stream=True, timeout=120) as answer:
            if answer.status_code != 200:
                raise BenchError(f"export {fmt_} answered {answer.status_code}: {answer.text[:300]}")
            with open(os.devnull, "wb") as sink:
                for chunk in answer.iter_content(chunk_size=65536):
                    if first_byte is None:
                        first_byte = time.perf_counter() - began
                    sink.write(chunk)
                    size += len(chunk)
                    counter.feed(chunk)
    finally:
        seconds = time.perf_counter() - began
        memory = watch.stop()
        other_cpu = other.stop()
    cpu_after = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    rows = counter.count - 1 if fmt_ == "csv" else counter.count  # the CSV header line
    return {
        "format": fmt_, "rows": rows, "bytes": size, "seconds": seconds, "first_byte_ms": (first_byte or 0) * 1000,
        "rows_per_s": rows / seconds if seconds else None, "memory": memory,
        "gateway_cpu_s": cpu_after["gateway"] - cpu_before["gateway"],
        "inventory_cpu_s": cpu_after["inventory"] - cpu_before["inventory"],
        "other_cpu_pct": other_cpu,
    }


# -- report -------------------------------------------------------------------------------------


def mib(kib):
    return None if kib is None else kib / 1024


def report(args, stack, seeding, results_by_size, exports):
    for size, list_results in results_by_size.items():
        print()
        print(f"(a) GET /api/v1/servers as one customer with {size:,} servers — each query {args.repeat}× "
              f"in a row on one keep-alive connection ({args.client}), after {WARMUP_REQUESTS} unmeasured; "
              f"{os.cpu_count()} cores")
        headers = ["query", "total", "items", "requests", "errors", "p50 ms", "p99 ms", "max ms",
                   "gateway cpu ms/req", "inventory cpu ms/req", "other cpu%"]
        rows = [[r["query"], r["total"], r["items"], r["requests"], r["errors"], fmt(r["p50_ms"], ".1f"),
                 fmt(r["p99_ms"], ".1f"), fmt(r["max_ms"], ".1f"), fmt(r["gateway_cpu_ms_per_req"], ".1f"),
                 fmt(r["inventory_cpu_ms_per_req"], ".1f"), fmt(r["other_cpu_pct"], ".0f")] for r in list_results]
        print(table(headers, rows))
        for r in list_results:
            print(f"  {r['query']:<18} {json.dumps(r['params'])[:120]}")
    small, large = min(results_by_size), max(results_by_size)
    if small != large:
        print()
        print(f"    {small:,} vs {large:,} servers (ratio: at {large:,} / at {small:,}; flat is at most 1.5)")
        headers = ["query", f"p50 ms {small:,}", f"p50 ms {large:,}", f"p99 ms {small:,}", f"p99 ms {large:,}",
                   "p99 ratio", f"inv cpu ms {small:,}", f"inv cpu ms {large:,}"]
        rows = []
        for a, b in zip(results_by_size[small], results_by_size[large]):
            ratio = b["p99_ms"] / a["p99_ms"] if a["p99_ms"] and b["p99_ms"] else None
            rows.append([a["query"], fmt(a["p50_ms"], ".1f"), fmt(b["p50_ms"], ".1f"), fmt(a["p99_ms"], ".1f"),
                         fmt(b["p99_ms"], ".1f"), fmt(ratio, ".2f"), fmt(a["inventory_cpu_ms_per_req"], ".1f"),
                         fmt(b["inventory_cpu_ms_per_req"], ".1f")])
        print(table(headers, rows))
    print()
    print(f"(b) GET /api/v1/servers/export of {args.export_rows:,} servers, streamed to /dev/null")
    headers = ["format", "rows", "MiB", "seconds", "first byte ms", "rows/s", "gateway cpu s", "inventory cpu s",
               "other cpu%"]
    rows = [[e["format"], e["rows"], fmt(e["bytes"] / 1048576, ".1f"), fmt(e["seconds"], ".1f"),
             fmt(e["first_byte_ms"], ".0f"), fmt(e["rows_per_s"], ".0f"), fmt(e["gateway_cpu_s"], ".1f"),
             fmt(e["inventory_cpu_s"], ".1f"), fmt(e["other_cpu_pct"], ".0f")] for e in exports]
    print(table(headers, rows))
    print()
    print("memory (MiB): VmRSS and VmHWM (peak RSS since start) before and after each download; "
          "peak VmRSS sampled every 20 ms during it")
    headers = ["format", "process", "rss before", "peak rss during", "rss growth", "rss after", "hwm before",
               "hwm after", "hwm growth"]
    rows = []
    for e in exports:
        for name, m in e["memory"].items():
            rows.append([e["format"], name, fmt(mib(m["rss_before_kib"]), ".1f"),
                         fmt(mib(m["peak_rss_during_kib"]), ".1f"), fmt(mib(m["rss_growth_kib"]), "+.1f"),
                         fmt(mib(m["rss_after_kib"]), ".1f"), fmt(mib(m["hwm_before_kib"]), ".1f"),
                         fmt(mib(m["hwm_after_kib"]), ".1f"), fmt(mib(m["hwm_growth_kib"]), "+.1f")])
    print(table(headers, rows, right=range(2, len(headers))))
    print()
    noisy = [f"{r['query']} at {size:,}" for size, list_results in results_by_size.items() for r in list_results
             if (r["other_cpu_pct"] or 0) > NOISY_OTHER_CPU_PCT]
    noisy += [f"export {e['format']}" for e in exports if (e["other_cpu_pct"] or 0) > NOISY_OTHER_CPU_PCT]
    if noisy:
        print(f"  ! other programs used more than {NOISY_OTHER_CPU_PCT}% CPU during {', '.join(noisy)}: "
              "those rows are disturbed; run again on a quiet machine")
    for e in exports:
        if e["rows"] != args.export_rows:
            print(f"  ! {e['format']} export: {e['rows']} rows, expected {args.export_rows}")
    print("seeding: " + "; ".join(
        f"{s['servers']:,} servers in {s['seconds']:.1f} s ({s['servers_per_s']:.0f}/s in batches of {args.batch}, "
        f"{s['held_seconds']:.0f} s of it held back for the stack to keep up), the stack settled "
        f"{s['settle_seconds']:.1f} s later" for s in seeding))
    print()
    summary = {
        "benchmark": "servers", "client": args.client, "sizes": args.sizes, "export_rows": args.export_rows, "repeat": args.repeat,
        "batch": args.batch, "cores": os.cpu_count(), "boot_seconds": round(stack.boot_seconds, 2),
        "seeding": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()} for s in seeding],
        "list": {size: [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "params"}
                        for r in list_results] for size, list_results in results_by_size.items()},
        "export": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()} for e in exports],
    }
    print(json.dumps(summary))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,100000",
                        help="comma-separated fleet sizes for part (a), measured in turn (100,100000)")
    parser.add_argument("--export-rows", type=int, default=100000, help="servers for the export (100000)")
    parser.add_argument("--repeat", type=int, default=200, help="requests per query in part (a) (200)")
    parser.add_argument("--batch", type=int, default=1000, help="servers per seeding transaction (1000)")
    parser.add_argument("--client", choices=("http.client", "requests"), default="http.client",
                        help="the HTTP client of part (a): a keep-alive http.client connection (default) or requests")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's folder (logs, databases)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    except ValueError:
        parser.error("--sizes: whole numbers separated by commas")
    if not args.sizes or args.sizes[0] < 1 or args.export_rows < args.sizes[-1] or args.repeat < 1 or args.batch < 1:
        parser.error("need sizes >= 1, export-rows >= the largest size, repeat >= 1, batch >= 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    install_signal_handlers()

    def run(stack):
        seeder = backpressure = None
        try:
            with stack.rpc(timeout=120) as cluster:
                user = cluster.auth.register_user(CUSTOMER["username"], CUSTOMER["password"], CUSTOMER["email"],
                                                  None, False)
            user_id = user["id"]
            seeder = Seeder(stack.info["databases"]["inventory"], user_id)
            session = requests.Session()
            session.headers["Authorization"] = "Bearer " + login_password(
                session, stack.api, CUSTOMER["username"], CUSTOMER["password"])

            def progress(count):
                if count % 10000 == 0 or count in (*args.sizes, args.export_rows):
                    print(f"[bench]   {count:,} servers", flush=True)

            seeding, results_by_size = [], {}
            backpressure = Backpressure(stack)
            for size in args.sizes:
                print(f"[bench] seeding up to {size:,} servers into {stack.info['databases']['inventory']} ...",
                      flush=True)
                result = seeder.grow_to(size, args.batch, progress, backpressure)
                print("[bench] waiting for the stack to settle (relays, billing, notify) ...", flush=True)
                result["settle_seconds"] = settle(stack, SETTLE_TIMEOUT, print_settle_progress)
                seeding.append(result)
                listed = session.get(f"{stack.api}/servers", params={"per_page": 1}, timeout=60).json()
                if listed.get("total") != size:
                    raise BenchError(f"the customer's list shows {listed.get('total')} servers, not {size}")
                results_by_size[size] = []
                client = KeepAliveClient(stack.api, session.headers["Authorization"]) \
                    if args.client == "http.client" else RequestsClient(stack.api, session)
                try:
                    for name, params in queries(size, last_page_cursor(session, stack, size)):
                        print(f"[bench] {size:,} servers: {name} ×{args.repeat} ...", flush=True)
                        results_by_size[size].append(measure_query(client, stack, name, params, args.repeat))
                        stack.check()
                finally:
                    client.close()

            print(f"[bench] growing the customer to {args.export_rows:,} servers ...", flush=True)
            result = seeder.grow_to(args.export_rows, args.batch, progress, backpressure)
            print("[bench] waiting for the stack to settle (relays, billing, notify) ...", flush=True)
            result["settle_seconds"] = settle(stack, SETTLE_TIMEOUT, print_settle_progress)
            seeding.append(result)
            exports = []
            for fmt_ in ("csv", "json"):
                print(f"[bench] export format={fmt_} ...", flush=True)
                exports.append(export(session, stack, fmt_))
                stack.check()
            report(args, stack, seeding, results_by_size, exports)
        finally:
            if seeder is not None:
                seeder.close()
            if backpressure is not None:
                backpressure.close()

    return run_on_stack(BenchStack(keep=args.keep_logs, label="bench-servers"), run)


if __name__ == "__main__":
    sys.exit(main())
