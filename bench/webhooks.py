"""Webhooks: from an operation's end to its signed POST, and deliveries per second through
the outbox, each beside a reference measured in the same run.

    python -m bench.webhooks [--operations 200] [--in-flight 4] [--burst 2000] [--keep-logs]

Boots the whole stack (``bench.stack``) with ``BMC_POWER_DELAY=0``, logs in as the second
demo customer, registers a webhook endpoint for ``operation_succeeded`` that points at a
receiver in this process (``tests/webhook_receiver.py``: a real HTTP server that checks
every signature), and opens the customer's Server-Sent Events stream.

(a) Latency: ``--operations`` ``power_on`` operations, ``--in-flight`` at a time over 8
servers of the customer (as ``bench.notify_latency`` runs and provisions them). For each, the POST's arrival at the receiver minus the
operation's ``finished_at``; the reference is the same operation's SSE frame (the action-log
path: the same source event through notify, the gateway and the stream). Ratio = webhook /
SSE at p50 and p99.

(b) Throughput: ``--burst`` deliveries queued at once (one endpoint, rows put in notify's
outbox with its own code, ``WebhookUseCases._queue``), timed until the receiver has all of
them. Reference: another process POSTing the same number of signed bodies straight to the
receiver, 10 at a time (the worker's parallelism). Ratio = outbox / direct.

Nothing is asserted; the stack is stopped and the vhost deleted at the end.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

from bench.measure import fmt, percentile, table  # noqa: E402
from bench.notify_latency import (  # noqa: E402
    StreamReader,
    customer_servers,
    provision_more,
    run_operations,
    timestamp,
)
from bench.stack import BenchError, BenchStack, install_signal_handlers, login_password, run_on_stack, settle  # noqa: E402
from tests.webhook_receiver import Receiver  # noqa: E402


def latency_run(args, stack, session, receiver, user_id):
    wanted = max(8, args.in_flight)
    provision_more(stack, user_id, wanted - len(customer_servers(stack, session)))  # a server runs one at a time
    settle(stack)
    servers = [s["id"] for s in customer_servers(stack, session)][:wanted]
    reader = StreamReader(requests.Session(), f"{stack.api}/notifications/stream")
    reader.session.headers.update(session.headers)
    reader.start()
    try:
        done, problems = run_operations(stack, session, reader, servers, args.in_flight, "power_on", 5,
                                        args.operations)
    finally:
        reader.close()
    deadline = time.monotonic() + 60
    measured = [operation_id for operation_id, _, final, warm in done if not warm and final == "success"]
    while time.monotonic() < deadline and not all(arrival_of(receiver, op) for op in measured):
        time.sleep(0.1)
    webhook_ms, sse_ms = [], []
    for operation_id in measured:
        finished = timestamp(session.get(f"{stack.api}/operations/{operation_id}", timeout=30).json()["finished_at"])
        arrival = arrival_of(receiver, operation_id)
        frame = reader.frames.get((operation_id, "success"))
        if arrival is None or frame is None:
            problems.append(f"{operation_id}: no webhook or no frame")
            continue
        webhook_ms.append((arrival - finished) * 1000)
        sse_ms.append((frame[0] - finished) * 1000)
    return sorted(webhook_ms), sorted(sse_ms), problems


def arrival_of(receiver, operation_id):
    for attempt in receiver.attempts:
        if attempt["body"]["data"].get("operation_id") == operation_id and attempt["status"] == 200:
            return attempt["at"]
    return None


def burst_run(args, stack, user_id, endpoint_id, receiver):
    """Queue ``--burst`` deliveries straight into notify's outbox; time until all arrived."""
    import sqlalchemy as sa

    from common.db import create_engine
    from common.eventstore import utcnow
    from services.notify.projections import webhook_endpoints
    from services.notify.webhooks import WebhookUseCases

    engine = create_engine(stack.info["databases"]["notify"])
    queue = WebhookUseCases(None, type("Clock", (), {"now": staticmethod(utcnow)})(), None, None, {})
    before = len(receiver.processed)
    with engine.begin() as conn:
        endpoint = conn.execute(sa.select(webhook_endpoints).where(
            webhook_endpoints.c.endpoint_id == endpoint_id)).mappings().first()
        started = time.time()
        for n in range(args.burst):
            queue._queue(conn, endpoint, f"evt_bench_{started:.0f}_{n}", "operation_succeeded",
                         {"operation_id": f"bench-{n}", "user_id": user_id})
    queued_at = time.time()
    deadline = time.monotonic() + 600
    while len(receiver.processed) - before < args.burst and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.dispose()
    got = len(receiver.processed) - before
    return got, time.time() - queued_at


DIRECT_SCRIPT = """
import sys, time, json, hashlib, hmac
from concurrent.futures import ThreadPoolExecutor
import requests
url, count, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
session = requests.Session()
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=10))
def post(n):
    body = json.dumps({"id": f"evt_direct_{n}", "type": "operation_succeeded", "created_at": "now",
                       "data": {"operation_id": f"direct-{n}"}}, separators=(",", ":"), sort_keys=True).encode()
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    session.post(url, data=body, timeout=10, headers={"Content-Type": "application/json",
                 "Panel-Event-Id": f"evt_direct_{n}", "Panel-Signature": f"t={t},v1={mac}"})
started = time.time()
with ThreadPoolExecutor(10) as pool:
    list(pool.map(post, range(count)))
print(time.time() - started)
"""


def direct_run(args, receiver):
    """The reference: the same number of signed POSTs from another process (like notify,
    which runs in its own), 10 at a time, to the same receiver."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", DIRECT_SCRIPT, receiver.url, str(args.burst), receiver.secret],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise BenchError(f"the direct reference failed: {result.stderr[-500:]}")
    return float(result.stdout.strip())


def body(args):
    def run(stack):
        session = requests.Session()
        customer = stack.user(1)
        token = login_password(session, stack.api, customer["username"], customer["password"])
        session.headers["Authorization"] = f"Bearer {token}"
        user_id = session.get(f"{stack.api}/auth/session", timeout=30).json()["user"]["id"]
        receiver = Receiver()
        try:
            created = session.post(f"{stack.api}/webhooks", json={"url": receiver.url, "kinds": ["operation_succeeded"]},
                                   timeout=30)
            if created.status_code != 201:
                raise BenchError(f"could not register the endpoint: {created.status_code} {created.text[:300]}")
            receiver.secret = created.json()["secret"]
            settle(stack)
            print(f"[bench] {args.operations} power_on operations, {args.in_flight} at a time ...", flush=True)
            webhook_ms, sse_ms, problems = latency_run(args, stack, session, receiver, user_id)
            print(f"[bench] {args.burst} deliveries queued at once ...", flush=True)
            got, outbox_seconds = burst_run(args, stack, user_id, created.json()["id"], receiver)
            direct_seconds = direct_run(args, receiver)
            unsigned = [a for a in receiver.attempts if not a["signed"]]
            report(args, webhook_ms, sse_ms, problems, got, outbox_seconds, direct_seconds, unsigned)
        finally:
            receiver.close()
    return run


def report(args, webhook_ms, sse_ms, problems, got, outbox_seconds, direct_seconds, unsigned):
    print()
    print(f"(a) operation finished → arrival ({len(webhook_ms)} power_on operations, {args.in_flight} in flight)")
    rows = []
    for name, values in (("webhook POST", webhook_ms), ("SSE frame (reference)", sse_ms)):
        rows.append([name, fmt(percentile(values, 0.5), ".1f"), fmt(percentile(values, 0.99), ".1f"),
                     fmt(values[-1] if values else None, ".1f")])
    ratio50 = percentile(webhook_ms, 0.5) / percentile(sse_ms, 0.5) if webhook_ms and sse_ms else None
    ratio99 = percentile(webhook_ms, 0.99) / percentile(sse_ms, 0.99) if webhook_ms and sse_ms else None
    rows.append(["ratio webhook / SSE", fmt(ratio50, ".2f"), fmt(ratio99, ".2f"), ""])
    print(table(["path", "p50 ms", "p99 ms", "max ms"], rows))
    print()
    print(f"(b) {args.burst} deliveries at once")
    outbox_rate = got / outbox_seconds if outbox_seconds else None
    direct_rate = args.burst / direct_seconds if direct_seconds else None
    print(table(["path", "delivered", "seconds", "deliveries/s"], [
        ["through the outbox (notify)", got, fmt(outbox_seconds, ".2f"), fmt(outbox_rate, ".0f")],
        ["direct POSTs (reference)", args.burst, fmt(direct_seconds, ".2f"), fmt(direct_rate, ".0f")],
        ["ratio outbox / direct", "", "", fmt(outbox_rate / direct_rate if outbox_rate and direct_rate else None, ".2f")],
    ]))
    print(f"\nunsigned or badly signed deliveries: {len(unsigned)}; problems: {len(problems)}")
    for problem in problems[:5]:
        print(f"  {problem}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    install_signal_handlers()
    stack = BenchStack(extra_env={"BMC_POWER_DELAY": "0"}, keep=args.keep_logs, label="webhooks")
    sys.exit(run_on_stack(stack, body(args)))


if __name__ == "__main__":
    main()
