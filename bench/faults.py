"""The fault loop (issue 20): customers keep working while every process is killed in turn
and the broker restarts, then the invariants a customer would check are counted.

Traffic, through the gateway's public API only, as a careful client sends it:

- every customer server is rebooted again and again, each reboot sent with an
  ``Idempotency-Key`` and, when its answer is lost (no connection, 503, the key still in
  use), sent again with the same key until it is answered;
- top-ups are created (with a key) and paid at the payment sandbox, whose signed webhook
  credits the balance.

Faults, one after the other, each once the traffic flows: ``kill -9`` of every service and
of the gateway (the stack restarts it), then a restart of RabbitMQ (``rabbitmqctl
stop_app`` / ``start_app``). A fault *clears* when the process is back (or the broker
answers) and ``/readyz`` is 200 again; its *recovery* is the time from then until every
reboot accepted before it cleared has finished.

Counted at the end: accepted, lost (never finished), duplicated (one key answered with two
operations, or an operation with more than its two action-log entries), stuck (pending or
running once the traffic stopped and everything had time to finish), 5xx answers other
than 503 (which means "try again"), top-ups paid but not credited exactly once.

    python -m bench.faults [--seconds-per-fault 8] [--no-broker]

``run_fault_loop`` is what the e2e test runs (tests/e2e/test_faults.py).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict

import requests

from common.config import SERVICES

FINAL = ("succeeded", "failed")
KILLED = (*SERVICES, "gateway")
RETRY_PAUSE = 0.25


def stack_pid(info, name):
    return json.loads((info["var_dir"] / "stack.json").read_text())["processes"][name]


class Customer:
    """A logged-in customer: its bearer header and active servers."""

    def __init__(self, api, bearer, servers):
        self.api = api
        self.bearer = bearer
        self.servers = servers


class Traffic:
    """Reboots and top-ups until stopped; what was asked, accepted and answered."""

    def __init__(self, info, customers):
        self.info = info
        self.customers = customers
        self.running = False
        self.lock = threading.Lock()
        self.answers = Counter()
        self.operations = {}  # operation id -> (customer, accepted at, finished at or None)
        self.keys = defaultdict(set)  # idempotency key -> operation ids it was answered with
        self.topups = []  # (customer, top-up id, amount) paid at the sandbox
        self.threads = []

    # -- driving ------------------------------------------------------------------------------

    def start(self):
        self.running = True
        for customer in self.customers:
            for server_id in customer.servers:
                self.threads.append(threading.Thread(target=self._reboots, args=(customer, server_id), daemon=True))
            self.threads.append(threading.Thread(target=self._topups, args=(customer,), daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join(timeout=120)

    def accepted(self):
        with self.lock:
            return len(self.operations)

    def in_flight(self):
        """Accepted reboots not finished yet (a fault then hits work under way)."""
        with self.lock:
            return sum(1 for record in self.operations.values() if record[2] is None)

    def _send(self, method, url, customer, key, body=None):
        """The answer to a command, sent again with the same key until it is answered."""
        while True:
            try:
                answer = requests.request(method, url, json=body, timeout=15,
                                          headers={**customer.bearer, "Idempotency-Key": key})
            except requests.RequestException as error:
                self._count(type(error).__name__)
                time.sleep(RETRY_PAUSE)
                continue
            self._count(answer.status_code)
            if answer.status_code in (503, 429) or (answer.status_code == 401 and not self._gateway_ready()):
                time.sleep(RETRY_PAUSE)
                continue
            return answer

    def _gateway_ready(self):
        try:
            return requests.get(f"{self.info['gateway']}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def _count(self, what):
        with self.lock:
            self.answers[what] += 1

    def _reboots(self, customer, server_id):
        while self.running:
            key = f"fault-loop-{uuid.uuid4().hex}"
            answer = self._send("POST", f"{customer.api}/servers/{server_id}/actions", customer, key,
                                {"action": "reboot"})
            if answer.status_code != 202:  # 409: its previous reboot still runs here
                time.sleep(RETRY_PAUSE)
                continue
            operation_id = answer.json()["operation"]["id"]
            with self.lock:
                self.keys[key].add(operation_id)
                self.operations.setdefault(operation_id, [customer, time.monotonic(), None])
            self.follow(customer, operation_id)

    def follow(self, customer, operation_id, timeout=300):
        """Wait for an operation to finish; records when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = operation_status(customer, operation_id)
            if status in FINAL:
                with self.lock:
                    record = self.operations[operation_id]
                    if record[2] is None:
                        record[2] = time.monotonic()
                return status
            time.sleep(0.1)
        return None

    def _topups(self, customer):
        while self.running:
            key = f"fault-topup-{uuid.uuid4().hex}"
            answer = self._send("POST", f"{customer.api}/billing/topups", customer, key,
                                {"amount": "20.00", "method": "stripe"})
            if answer.status_code == 201:
                topup = answer.json()
                paid = pay_at_sandbox(self.info, topup["provider_payment_id"])
                if paid:
                    with self.lock:
                        self.topups.append((customer, topup["id"], "20.00"))
            time.sleep(1.0)


def operation_status(customer, operation_id):
    try:
        answer = requests.get(f"{customer.api}/operations/{operation_id}", headers=customer.bearer, timeout=10)
    except requests.RequestException:
        return None
    return answer.json().get("status") if answer.status_code == 200 else None


def pay_at_sandbox(info, payment_id):
    """Complete a payment at the sandbox (it then sends its signed webhook, with retries)."""
    for _ in range(40):
        try:
            answer = requests.post(f"{info['payments_sandbox']}/payments/{payment_id}/complete",
                                   json={"outcome": "succeeded"}, timeout=10)
            if answer.status_code < 300:
                return True
        except requests.RequestException:
            pass  # the sandbox restarting: try again after the pause
        time.sleep(RETRY_PAUSE)
    return False


# -- faults ---------------------------------------------------------------------------------------

def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return time.monotonic()
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass  # not answering yet (a process coming back): the condition is asked again
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout} s")


def ready(info):
    return requests.get(f"{info['gateway']}/readyz", timeout=5).status_code == 200


def kill_and_wait(info, name):
    """kill -9 ``name``; the moment the stack has it back and /readyz is 200."""
    old = stack_pid(info, name)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: stack_pid(info, name) != old, 120, f"{name} restarted")
    return wait_until(lambda: ready(info), 120, f"the stack ready after {name}")


def restart_broker(info):
    """Stop and start RabbitMQ's application (every connection drops); the moment it and
    /readyz answer again."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl is not installed")
    subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=120)
    subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=120)
    subprocess.run([ctl, "await_startup"], check=True, capture_output=True, timeout=120)
    return wait_until(lambda: ready(info), 180, "the stack ready after the broker restart")


def recovery_seconds(traffic, cleared_at, timeout=180):
    """Seconds from ``cleared_at`` until every reboot accepted before it had finished."""
    with traffic.lock:
        pending = [(op, record[0]) for op, record in traffic.operations.items()
                   if record[1] <= cleared_at and record[2] is None]
    for operation_id, customer in pending:
        traffic.follow(customer, operation_id, timeout=timeout)
    with traffic.lock:
        finished = [traffic.operations[op][2] for op, _ in pending]
    if any(at is None for at in finished):
        return None
    return max([at - cleared_at for at in finished], default=0.0)


# -- the loop -------------------------------------------------------------------------------------

def log_in(info, customer):
    """A logged-in ``Customer`` (through the SMS code when it has two-factor on)."""
    from types import SimpleNamespace

    from bench.stack import login_any

    api = f"{info['gateway']}/api/v1"
    token = login_any(requests.Session(), SimpleNamespace(api=api, info=info), customer["username"],
                      customer["password"], customer.get("phone"))
    bearer = {"Authorization": f"Bearer {token}"}
    servers = requests.get(f"{api}/servers", headers=bearer, timeout=15).json()["items"]
    return Customer(api, bearer, [server["id"] for server in servers if server["status"] == "active"])


def run_fault_loop(info, seconds_per_fault=6.0, broker=True, killed=KILLED, progress=print):
    """Run the loop on a booted stack ``info`` (``tests.stack.running_stack`` or
    ``bench.stack.BenchStack``'s); returns the report (see the module docstring)."""
    customers = [log_in(info, customer) for customer in info["users"]]
    traffic = Traffic(info, customers)
    traffic.start()
    faults = []
    try:
        wait_until(lambda: traffic.accepted() >= 3, 120, "traffic flowing")
        plan = [("kill", name) for name in killed] + ([("broker", "rabbitmq")] if broker else [])
        for kind, name in plan:
            time.sleep(seconds_per_fault)
            wait_until(lambda: traffic.in_flight() > 0, 60, "work under way")
            started = time.monotonic()
            cleared = kill_and_wait(info, name) if kind == "kill" else restart_broker(info)
            recovery = recovery_seconds(traffic, cleared)
            faults.append({"fault": f"{kind} {name}", "down_s": round(cleared - started, 1),
                           "recovery_s": None if recovery is None else round(recovery, 1)})
            progress(f"[faults] {kind} {name}: back after {cleared - started:.1f} s, "
                     f"accepted work finished {recovery if recovery is None else round(recovery, 1)} s later "
                     f"({traffic.accepted()} accepted so far)")
        time.sleep(seconds_per_fault)
    finally:
        traffic.stop()
    return report(traffic, faults)


def report(traffic, faults, settle_seconds=120):
    """Follow everything accepted to its end, then count the invariants."""
    for operation_id, record in list(traffic.operations.items()):
        traffic.follow(record[0], operation_id, timeout=settle_seconds)
    statuses = {op: operation_status(record[0], op) for op, record in traffic.operations.items()}
    lost = [op for op, status in statuses.items() if status is None]
    stuck = [op for op, status in statuses.items() if status in ("pending", "running")]
    duplicated = [key for key, ops in traffic.keys.items() if len(ops) > 1]
    log_problems = []
    for customer in traffic.customers:
        mine = {op for op, record in traffic.operations.items() if record[0] is customer}
        entries = notifications(customer)
        per_operation = Counter(entry["operation_id"] for entry in entries if entry["operation_id"] in mine)
        log_problems += [f"{op}: {per_operation[op]} action-log entries" for op in mine if per_operation[op] != 2]
    credit_problems = []
    for customer in traffic.customers:
        paid = [topup_id for owner, topup_id, _ in traffic.topups if owner is customer]
        credited = credited_topups(customer, paid)
        credit_problems += [f"top-up {t}: credited {credited.get(t, 0)} times" for t in paid if credited.get(t) != 1]
    server_errors = {code: n for code, n in traffic.answers.items() if isinstance(code, int) and code >= 500 and code != 503}
    recoveries = [f["recovery_s"] for f in faults if f["recovery_s"] is not None]
    return {
        "kills": sum(1 for f in faults if f["fault"].startswith("kill")),
        "broker_restarts": sum(1 for f in faults if f["fault"].startswith("broker")),
        "accepted": len(traffic.operations), "lost": lost, "stuck": stuck,
        "duplicated": duplicated + log_problems, "server_errors": server_errors,
        "topups_paid": len(traffic.topups), "credit_problems": credit_problems,
        "faults": faults, "longest_recovery_s": max(recoveries, default=None),
        "unrecovered": [f["fault"] for f in faults if f["recovery_s"] is None],
        "answers": {str(k): v for k, v in traffic.answers.items()},
    }


def notifications(customer):
    entries, page = [], 1
    while True:
        answer = requests.get(f"{customer.api}/notifications", headers=customer.bearer, timeout=15,
                              params={"scope": "all", "per_page": 500, "page": page}).json()
        entries += answer["items"]
        if page * 500 >= answer["total"]:
            return entries
        page += 1


def credited_topups(customer, topup_ids):
    """How many credits of the statement name each top-up."""
    wanted, counts, page = set(topup_ids), Counter(), 1
    while True:
        answer = requests.get(f"{customer.api}/billing/transactions", headers=customer.bearer, timeout=15,
                              params={"per_page": 500, "page": page}).json()
        for item in answer["items"]:
            reference = item.get("reference") or ""
            for topup_id in wanted:
                if item["direction"] == "credit" and topup_id in reference:
                    counts[topup_id] += 1
        if page * 500 >= answer["total"]:
            return counts
        page += 1


def print_report(result):
    print(f"kills {result['kills']}, broker restarts {result['broker_restarts']}, accepted {result['accepted']}, "
          f"lost {len(result['lost'])}, duplicated {len(result['duplicated'])}, stuck {len(result['stuck'])}, "
          f"5xx {sum(result['server_errors'].values())}, top-ups paid {result['topups_paid']} "
          f"(credit problems {len(result['credit_problems'])}), longest recovery {result['longest_recovery_s']} s")
    for fault in result["faults"]:
        print(f"  {fault['fault']:<16} back after {fault['down_s']:>5} s   accepted work finished "
              f"{fault['recovery_s']} s later")
    print(f"  answers: {result['answers']}")


def main(argv=None):
    import eventlet

    eventlet.monkey_patch()
    from bench.stack import BenchStack, run_on_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-fault", type=float, default=8.0)
    parser.add_argument("--no-broker", action="store_true", help="leave RabbitMQ running")
    args = parser.parse_args(argv)

    def body(stack):
        info = dict(stack.info, var_dir=stack.var_dir)
        result = run_fault_loop(info, args.seconds_per_fault, broker=not args.no_broker)
        print_report(result)

    return run_on_stack(BenchStack(extra_env={"BMC_POWER_DELAY": "1"}), body)


if __name__ == "__main__":
    raise SystemExit(main())
