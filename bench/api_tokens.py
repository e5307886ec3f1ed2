"""What an API token costs per request, beside a session in the same run.

    python -m bench.api_tokens [--requests 300] [--keep-logs]

Boots the whole stack (``bench.stack``), logs in as the second demo customer (a session),
creates an API token with every read scope, and sends ``GET /api/v1/servers`` and
``GET /api/v1/auth/session`` ``--requests`` times each with either (one at a time, over one
keep-alive connection, after 10 unmeasured): p50 and p99, and the ratio token / session.
A session is checked in the gateway's own table; a token costs an RPC to the auth service
(its hash looked up, its stream read, its last use written at most once a minute).

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
from bench.stack import BenchError, BenchStack, install_signal_handlers, login_password, run_on_stack, settle  # noqa: E402

PATHS = ("/servers", "/auth/session")


def timings(url, token, count):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for _ in range(10):
        session.get(url, timeout=30).raise_for_status()
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url, timeout=30)
        measured.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise BenchError(f"{url} answered {answer.status_code}: {answer.text[:200]}")
    return sorted(measured)


def body(args):
    def run(stack):
        customer = stack.user(1)
        http = requests.Session()
        session_token = login_password(http, stack.api, customer["username"], customer["password"])
        created = requests.post(f"{stack.api}/tokens", json={"name": "bench", "scopes": ["read"]}, timeout=30,
                                headers={"Authorization": f"Bearer {session_token}"})
        if created.status_code != 201:
            raise BenchError(f"could not create a token: {created.status_code} {created.text[:200]}")
        api_token = created.json()["token"]
        settle(stack)
        rows = []
        for path in PATHS:
            print(f"[bench] {args.requests} × GET {path} with a session, then with an API token ...", flush=True)
            with_session = timings(f"{stack.api}{path}", session_token, args.requests)
            with_token = timings(f"{stack.api}{path}", api_token, args.requests)
            for name, values in (("session", with_session), ("API token", with_token)):
                rows.append([f"GET {path}", name, fmt(percentile(values, 0.5), ".2f"), fmt(percentile(values, 0.99), ".2f")])
            rows.append([f"GET {path}", "ratio token / session",
                         fmt(percentile(with_token, 0.5) / percentile(with_session, 0.5), ".2f"),
                         fmt(percentile(with_token, 0.99) / percentile(with_session, 0.99), ".2f")])
        print()
        print(table(["request", "authenticated by", "p50 ms", "p99 ms"], rows))
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    install_signal_handlers()
    stack = BenchStack(keep=args.keep_logs, label="tokens")
    sys.exit(run_on_stack(stack, body(args)))


if __name__ == "__main__":
    main()
