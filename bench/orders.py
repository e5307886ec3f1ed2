"""Instant orders through the whole stack: how long a customer waits for the 202, and for
the server to be delivered.

    python -m bench.orders [--orders 12] [--concurrency 1,4] [--keep-logs]

Boots the whole stack (``bench.stack``) with ``BMC_POWER_DELAY=0`` (the emulated machines
power on at once, so what is measured is the panel, not a simulated BMC), logs in over HTTP
as the second demo customer (no two-factor), tops their balance up through the payments
sandbox (a signed webhook credits it), and at each concurrency level *k* runs ``--orders``
instant orders from *k* greenthreads of this process: ``POST /api/v1/orders`` for the
cheapest instant offers that still have units, then ``GET /api/v1/operations/{id}`` every
20 ms until the order's operation finished. The devstack catalog has 32 instant units, so
``--orders`` × levels must stay within them.

Per order:

    accept     the POST's round trip (offer and balance checks, the unit reserved, the
               order and its operation recorded in one transaction)
    deliver    the 202 to the first poll that sees ``succeeded`` (orders' saga: billing
               charges, inventory powers the machine on over Redfish and records the
               server, the order completes); includes up to 20 ms of polling

and, per level, orders completed per second of wall time and the stack's CPU.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

from bench.measure import CpuWindow, fmt, oldest_pid_named, table  # noqa: E402
from bench.stack import (  # noqa: E402
    BenchError,
    BenchStack,
    login_password,
    ms_stats,
    run_on_stack,
    settle,
)

POLL_SECONDS = 0.02
DELIVERY_TIMEOUT = 120
FUNDS = "5000.00"


def fund(session, stack, token):
    headers = {"Authorization": f"Bearer {token}"}
    topup = session.post(f"{stack.api}/billing/topups", json={"amount": FUNDS, "method": "stripe"}, headers=headers,
                         timeout=30).json()
    session.post(f"{stack.info['payments_sandbox']}/payments/{topup['provider_payment_id']}/complete",
                 json={"outcome": "succeeded"}, timeout=30).raise_for_status()
    deadline = time.monotonic() + 60
    while session.get(f"{stack.api}/billing/topups/{topup['id']}", headers=headers,
                      timeout=30).json()["status"] != "succeeded":
        if time.monotonic() > deadline:
            raise BenchError("the top-up was not credited within 60 s")
        eventlet.sleep(0.1)


def offers_to_order(session, stack, count):
    """``count`` offer ids, cheapest first, within the units available now."""
    items = session.get(f"{stack.api}/catalog/instant", timeout=30).json()["items"]
    chosen = []
    for item in sorted(items, key=lambda o: float(o["price_month"])):
        chosen += [(item["id"], item["location"])] * item["available"]
    if len(chosen) < count:
        raise BenchError(f"only {len(chosen)} instant units left; ask for fewer orders")
    return chosen[:count]


def run_level(stack, token, concurrency, orders):
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    queue = list(offers_to_order(session, stack, orders))
    accepts, deliveries, failures = [], [], []

    def worker():
        own = requests.Session()
        while queue:
            offer_id, location = queue.pop(0)
            began = time.perf_counter()
            answer = own.post(f"{stack.api}/orders", json={"offer_id": offer_id, "location": location,
                                                           "os": "debian-12"}, headers=headers, timeout=30)
            accepted = time.perf_counter()
            if answer.status_code != 202:
                failures.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            accepts.append(accepted - began)
            operation_id = answer.json()["operation"]["id"]
            deadline = accepted + DELIVERY_TIMEOUT
            while True:
                status = own.get(f"{stack.api}/operations/{operation_id}", headers=headers, timeout=30).json()["status"]
                if status in ("succeeded", "failed"):
                    break
                if time.perf_counter() > deadline:
                    status = "timed out"
                    break
                eventlet.sleep(POLL_SECONDS)
            if status == "succeeded":
                deliveries.append(time.perf_counter() - accepted)
            else:
                failures.append(f"operation {operation_id} {status}")

    pids = [stack.pid_of(name) for name in ("gateway", "orders", "billing", "inventory", "notify", "bmc")]
    broker = oldest_pid_named("beam.smp")
    cpu = CpuWindow(pids + ([broker] if broker else []))
    cpu.start()
    started = time.perf_counter()
    pool = [eventlet.spawn(worker) for _ in range(concurrency)]
    for thread in pool:
        thread.wait()
    wall = time.perf_counter() - started
    used, machine = cpu.stop()
    accept = ms_stats(accepts)
    deliver = ms_stats(deliveries)
    accept_p50, accept_p99 = accept[0.50], accept[0.99]
    deliver_p50, deliver_p99 = deliver[0.50], deliver[0.99]
    return {
        "concurrency": concurrency, "orders": orders, "delivered": len(deliveries), "failed": len(failures),
        "first_failure": failures[0] if failures else None, "orders_per_s": len(deliveries) / wall,
        "accept_p50_ms": accept_p50, "accept_p99_ms": accept_p99,
        "deliver_p50_ms": deliver_p50, "deliver_p99_ms": deliver_p99,
        "cpu_pct": {name: used.get(pid) for name, pid in zip(("gateway", "orders", "billing", "inventory", "notify",
                                                              "bmc"), pids)},
        "broker_cpu_pct": used.get(broker), "machine_cpu_pct": machine,
    }


def report(results):
    headers = ["conc", "orders", "delivered", "failed", "orders/s", "accept p50 ms", "accept p99 ms",
               "deliver p50 ms", "deliver p99 ms", "gateway%", "orders%", "billing%", "inventory%", "broker%",
               "machine%"]
    rows = [[r["concurrency"], r["orders"], r["delivered"], r["failed"], fmt(r["orders_per_s"], ".1f"),
             fmt(r["accept_p50_ms"], ".1f"), fmt(r["accept_p99_ms"], ".1f"), fmt(r["deliver_p50_ms"], ".0f"),
             fmt(r["deliver_p99_ms"], ".0f"), fmt(r["cpu_pct"]["gateway"], ".0f"), fmt(r["cpu_pct"]["orders"], ".0f"),
             fmt(r["cpu_pct"]["billing"], ".0f"), fmt(r["cpu_pct"]["inventory"], ".0f"),
             fmt(r["broker_cpu_pct"], ".0f"), fmt(r["machine_cpu_pct"], ".0f")] for r in results]
    print()
    print("Instant orders through the stack (BMC_POWER_DELAY=0; CPU as % of one core)")
    print(table(headers, rows, right=range(0, len(headers))))
    for r in results:
        if r["failed"]:
            print(f"  ! c={r['concurrency']}: {r['failed']} failed, first: {r['first_failure']}")
    print()
    print(json.dumps({"benchmark": "orders", "results": results}))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=12, help="orders per concurrency level (12)")
    parser.add_argument("--concurrency", default="1,4",
                        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
                        help="comma-separated concurrency levels (1,4)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's folder")
    args = parser.parse_args(argv)
    if args.orders * len(args.concurrency) > 32:
        parser.error("the devstack catalog has 32 instant units: orders × levels must be ≤ 32")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body(stack):
        settle(stack)
        session = requests.Session()
        customer = stack.user(1)
        token = login_password(session, stack.api, customer["username"], customer["password"])
        fund(session, stack, token)
        results = []
        for concurrency in args.concurrency:
            print(f"[bench] {args.orders} orders at concurrency {concurrency} ...", flush=True)
            results.append(run_level(stack, token, concurrency, args.orders))
        report(results)

    return run_on_stack(BenchStack(keep=args.keep_logs, label="bench-orders", extra_env={"BMC_POWER_DELAY": "0"}),
                        body, booting=" (BMC_POWER_DELAY=0)")


if __name__ == "__main__":
    sys.exit(main())
