"""Login round trips per second through the gateway's HTTP API, with and without two-factor.

    python -m bench.login [--seconds 15] [--warmup 2] [--concurrency 1,8] [--modes password,2fa]
                          [--keep-logs]

Boots the whole stack (``bench.stack``: ``python -m deploy.devstack`` on a private RabbitMQ
vhost, a temporary var dir and free ports) and measures, at each concurrency, for a fixed
time after a warm-up, complete logins as a front-end does them:

    password   POST /api/v1/auth/login as the second demo user (two-factor off): one
               request, the answer carries the session token
    2fa        POST /api/v1/auth/login (answers a challenge; the auth service has sent the
               code to the SMS stand-in before answering), GET <sms_inbox>/messages?to=<phone>
               (the newest message holds the code), POST /api/v1/auth/2fa/verify: the
               session token

For ``2fa`` each concurrent client logs in as a user of its own with a phone of its own,
so that it reads its own code: client 0 is the first demo user, the others are users
registered for the run (``auth.register_user`` over nameko RPC, two-factor on, phones
+319701000001…). The password check is argon2id (t=3, m=46 MiB, run in the auth
service's thread pool), so a few logins per second per core is what to expect; the
benchmark also times one argon2id verification in its own process to show that ceiling.

Clients are eventlet greenthreads of this process (monkey-patched below), each with its own
keep-alive ``requests.Session``. Only logins that end inside the measured window count.
Nothing is asserted; the stack is stopped and the vhost deleted at the end, also on Ctrl-C.
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
from collections import Counter  # noqa: E402

import requests  # noqa: E402

from bench.measure import CpuWindow, fmt, oldest_pid_named, table, timed_window  # noqa: E402
from bench.stack import (  # noqa: E402
    BenchError,
    BenchStack,
    install_signal_handlers,
    ms_stats,
    run_on_stack,
    settle,
    sms_code,
)

MODES = ("password", "2fa")
EXTRA_PASSWORD = "bench-login-password-1"
EXTRA_PHONE = "+319701{:06d}"
NOISY_OTHER_CPU_PCT = 25
REQUEST_TIMEOUT = 60


class Failed(Exception):
    def __init__(self, what, status=None):
        super().__init__(what)
        self.status = status


def check(answer, what):
    if answer.status_code != 200:
        raise Failed(f"{what} answered {answer.status_code}: {answer.text[:200]}", answer.status_code)
    return answer.json()


class PasswordClient:
    """One login without two-factor: a single request."""

    def __init__(self, stack, username, password):
        self.url = f"{stack.api}/auth/login"
        self.body = {"username": username, "password": password}
        self.session = requests.Session()
        self.steps = {}

    def login(self):
        body = check(self.session.post(self.url, json=self.body, timeout=REQUEST_TIMEOUT), "login")
        if body.get("status") != "ok" or not body.get("token"):
            raise Failed(f"login answered {body.get('status')!r}, not a session")
        return body["token"]

    def close(self):
        self.session.close()


class TwoFactorClient:
    """One login with two-factor: login, the code from the SMS inbox, verify."""

    def __init__(self, stack, username, password, phone):
        self.api = stack.api
        self.inbox = stack.info["sms_inbox"]
        self.body = {"username": username, "password": password}
        self.phone = phone
        self.session = requests.Session()
        self.previous_id = None
        self.steps = {}  # the last login's step durations (s)

    def login(self):
        t0 = time.perf_counter()
        challenge = check(self.session.post(f"{self.api}/auth/login", json=self.body, timeout=REQUEST_TIMEOUT), "login")
        if challenge.get("status") != "2fa_required":
            raise Failed(f"login answered {challenge.get('status')!r}, not a challenge")
        if challenge.get("sent_via") is None:
            raise Failed("no SMS provider took the code")
        t1 = time.perf_counter()
        try:
            code, self.previous_id = sms_code(self.session, self.inbox, self.phone, self.previous_id, timeout=30)
        except BenchError as error:
            raise Failed(str(error)) from None
        t2 = time.perf_counter()
        verified = check(self.session.post(f"{self.api}/auth/2fa/verify", timeout=REQUEST_TIMEOUT,
                                           json={"challenge_id": challenge["challenge_id"], "code": code}), "verify")
        t3 = time.perf_counter()
        if not verified.get("token"):
            raise Failed("verify answered no token")
        self.steps = {"login": t1 - t0, "inbox": t2 - t1, "verify": t3 - t2}
        return verified["token"]

    def close(self):
        self.session.close()


def register_extra_users(stack, count):
    """``count`` users with two-factor on and phones of their own (for 2FA clients 1…)."""
    users = []
    if count <= 0:
        return users
    with stack.rpc(timeout=120) as cluster:
        for n in range(1, count + 1):
            username, phone = f"bench-2fa-{n}", EXTRA_PHONE.format(n)
            cluster.auth.register_user(username, EXTRA_PASSWORD, f"{username}@bench.local", phone, True)
            users.append({"username": username, "password": EXTRA_PASSWORD, "phone": phone})
    return users


def make_clients(stack, mode, concurrency, extra_users):
    if mode == "password":
        other = stack.user(1)
        return [PasswordClient(stack, other["username"], other["password"]) for _ in range(concurrency)]
    demo = stack.user(0)
    people = [{"username": demo["username"], "password": demo["password"], "phone": demo["phone"]}] + extra_users
    return [TwoFactorClient(stack, u["username"], u["password"], u["phone"]) for u in people[:concurrency]]


def measure(stack, mode, concurrency, warmup, seconds, extra_users):
    clients = make_clients(stack, mode, concurrency, extra_users)

    def login(client):
        client.login()
        return dict(client.steps) if client.steps else None

    def as_failure(error):
        return error if isinstance(error, Failed) else Failed(f"{type(error).__name__}: {error}")

    pids = stack.info["processes"]
    broker = oldest_pid_named("beam.smp")
    stack_pids = list(pids.values())
    cpu = CpuWindow([os.getpid()] + stack_pids + ([broker] if broker else []))
    try:
        # After a refusal wait a little: do not hammer a refusing path (429 comes with Retry-After).
        latencies, step_results, errors, used, machine = timed_window(
            clients, login, warmup, seconds, cpu, record_error=as_failure, error_pause=0.2)
    finally:
        for client in clients:
            client.close()
    steps = [s for s in step_results if s]
    stats = ms_stats(latencies)
    known = [used.get(pid) for pid in [os.getpid()] + stack_pids] + ([used.get(broker)] if broker else [])
    other = None if machine is None or None in known else max(machine - sum(known), 0.0)
    rest = [used.get(pid) for name, pid in pids.items() if name not in ("auth", "gateway")]
    statuses = Counter(e.status for e in errors if e.status is not None)
    result = {
        "mode": mode, "concurrency": concurrency, "count": len(latencies), "errors": len(errors),
        "rate_limited_429": statuses.get(429, 0), "error_statuses": dict(statuses),
        "first_error": str(errors[0]) if errors else None,
        "logins_per_s": len(latencies) / seconds, "p50_ms": stats[0.50], "p99_ms": stats[0.99],
        "client_cpu_pct": used.get(os.getpid()), "auth_cpu_pct": used.get(pids["auth"]),
        "gateway_cpu_pct": used.get(pids["gateway"]),
        "rest_of_stack_cpu_pct": None if None in rest else sum(rest),
        "broker_cpu_pct": used.get(broker) if broker else None,
        "other_cpu_pct": other, "machine_cpu_pct": machine,
    }
    if steps:
        for step in ("login", "inbox", "verify"):
            step_stats = ms_stats([s[step] for s in steps])
            result[f"{step}_p50_ms"], result[f"{step}_p99_ms"] = step_stats[0.50], step_stats[0.99]
    return result


def argon2_reference(samples=5):
    """One argon2id verification with the auth service's hasher (``make_hasher`` with its
    config defaults, or the ARGON2_* overrides of this environment, which the stack's auth
    service also reads), in this process: median of ``samples``. The least CPU a login
    costs the auth service."""
    from services.auth.accounts import make_hasher

    config = {k: os.environ[k] for k in ("ARGON2_TIME_COST", "ARGON2_MEMORY_KIB", "ARGON2_PARALLELISM")
              if k in os.environ}
    hasher = make_hasher(config)
    digest = hasher.hash("reference-password")
    durations = []
    for _ in range(samples):
        began = time.perf_counter()
        hasher.verify(digest, "reference-password")
        durations.append(time.perf_counter() - began)
    durations.sort()
    return {"time_cost": hasher.time_cost, "memory_kib": hasher.memory_cost, "parallelism": hasher.parallelism,
            "verify_ms": durations[len(durations) // 2] * 1000}


def report(results, reference, args, stack):
    cores = os.cpu_count()
    print()
    print(f"Logins through the gateway — {args.seconds:g} s measured after {args.warmup:g} s warm-up per row; "
          f"clients: eventlet greenthreads, one keep-alive HTTP session each; {cores} cores")
    headers = ["mode", "conc", "count", "errors", "429s", "logins/s", "p50 ms", "p99 ms", "client cpu%",
               "auth cpu%", "gateway cpu%", "rest cpu%", "broker cpu%", "other cpu%", "machine cpu%"]
    rows = [[r["mode"], r["concurrency"], r["count"], r["errors"], r["rate_limited_429"],
             fmt(r["logins_per_s"], ".2f"), fmt(r["p50_ms"], ".0f"), fmt(r["p99_ms"], ".0f"),
             fmt(r["client_cpu_pct"], ".0f"), fmt(r["auth_cpu_pct"], ".0f"), fmt(r["gateway_cpu_pct"], ".0f"),
             fmt(r["rest_of_stack_cpu_pct"], ".0f"), fmt(r["broker_cpu_pct"], ".0f"),
             fmt(r["other_cpu_pct"], ".0f"), fmt(r["machine_cpu_pct"], ".0f")] for r in results]
    print(table(headers, rows))
    two_factor = [r for r in results if r["mode"] == "2fa" and r.get("login_p50_ms") is not None]
    if two_factor:
        print()
        print("2fa steps (ms, p50 / p99): login = password check + challenge + SMS sent; inbox = reading the "
              "code from the SMS stand-in; verify = code check + session")
        step_rows = [[r["concurrency"]] + [f"{fmt(r[f'{s}_p50_ms'], '.0f')} / {fmt(r[f'{s}_p99_ms'], '.0f')}"
                                           for s in ("login", "inbox", "verify")] for r in two_factor]
        print(table(["conc", "login", "inbox", "verify"], step_rows))
    print()
    verify_ms = reference["verify_ms"]
    ceiling = cores * 1000 / verify_ms
    print(f"argon2id (t={reference['time_cost']}, m={reference['memory_kib'] // 1024} MiB, "
          f"p={reference['parallelism']}) verification alone, in this process: {verify_ms:.0f} ms → "
          f"at most {1000 / verify_ms:.1f} logins/s per core, {ceiling:.1f}/s on {cores} cores "
          "if the machine did nothing else")
    for r in results:
        note = f"{r['logins_per_s'] / ceiling * 100:.0f}% of that ceiling" if r["count"] else "no login completed"
        print(f"  {r['mode']:<8} c={r['concurrency']:<3} {fmt(r['logins_per_s'], '.2f')} logins/s: {note}")
    for r in results:
        if r["errors"]:
            print(f"  ! {r['mode']} c={r['concurrency']}: {r['errors']} failed logins "
                  f"(statuses {r['error_statuses'] or 'none'}), first: {r['first_error']}")
        if r["rate_limited_429"]:
            print(f"  ! {r['mode']} c={r['concurrency']}: {r['rate_limited_429']} answers were 429 (throttled)")
    if not any(r["errors"] for r in results):
        print("  no failed login and no 429 in any row")
    noisy = [r for r in results if (r["other_cpu_pct"] or 0) > NOISY_OTHER_CPU_PCT]
    if noisy:
        print(f"  ! other programs used more than {NOISY_OTHER_CPU_PCT}% CPU during "
              + ", ".join(f"{r['mode']} c={r['concurrency']}" for r in noisy)
              + ": those rows are disturbed; run again on a quiet machine")
    print()
    summary = {
        "benchmark": "login", "seconds": args.seconds, "warmup": args.warmup, "concurrency": args.concurrency,
        "cores": cores, "boot_seconds": round(stack.boot_seconds, 2),
        "argon2_reference": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in reference.items()},
        "results": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in results],
    }
    print(json.dumps(summary))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.login", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per row (15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per row (2)")
    parser.add_argument("--concurrency", default="1,8",
                        type=lambda text: [int(p) for p in text.split(",") if p.strip()],
                        help="comma-separated concurrency levels (1,8)")
    parser.add_argument("--modes", default=",".join(MODES),
                        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
                        help=f"which modes ({','.join(MODES)})")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's folder (logs, databases)")
    args = parser.parse_args(argv)
    if any(c < 1 for c in args.concurrency):
        parser.error("concurrency levels must be >= 1")
    if any(m not in MODES for m in args.modes):
        parser.error(f"modes: choose from {', '.join(MODES)}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    install_signal_handlers()

    def run(stack):
        extra = []
        if "2fa" in args.modes and max(args.concurrency) > 1:
            print(f"[bench] registering {max(args.concurrency) - 1} more two-factor users (one phone each) ...",
                  flush=True)
            extra = register_extra_users(stack, max(args.concurrency) - 1)
        settle(stack)  # the demo seed's and the set-up's events have travelled: an idle stack
        results = []
        for concurrency in args.concurrency:
            for mode in [m for m in MODES if m in args.modes]:
                print(f"[bench] {mode} at concurrency {concurrency} ...", flush=True)
                requests.delete(f"{stack.info['sms_inbox']}/messages", timeout=10)
                results.append(measure(stack, mode, concurrency, args.warmup, args.seconds, extra))
                stack.check()
        print("[bench] timing argon2id in this process ...", flush=True)
        report(results, argon2_reference(), args, stack)

    return run_on_stack(BenchStack(keep=args.keep_logs, label="bench-login"), run)


if __name__ == "__main__":
    sys.exit(main())
