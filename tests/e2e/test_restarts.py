"""Restarting any one service while requests flow through the gateway loses no accepted
operation (issue 10). The whole dev stack runs (``deploy.devstack``, which restarts a child
that exits); customers keep rebooting their servers through the gateway while inventory,
then notify, is stopped with SIGTERM (graceful: in-flight work finishes) and killed with
SIGKILL (its unacked work is redelivered). Every operation answered 202 must reach a final
state, and have exactly its two action-log entries (started, result) in notify."""

import json
import os
import re
import signal
from collections import Counter

import eventlet
import pytest
import requests

from tests.stack import running_stack
from tests.support import wait_for

FINAL = ("succeeded", "failed")
# Statuses the gateway may answer to an action while a service restarts: accepted, the
# server busy with its previous action, inventory unreachable for the moment.
EXPECTED_ACTION_ANSWERS = {202, 409, 503}
ACCEPTED_PER_PHASE = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # Power changes take 2 s on the emulated BMCs: long enough to stop inventory mid-action.
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-restarts", BMC_POWER_DELAY="2") as info:
        yield info


def log_in(stack, customer):
    """A bearer header for ``customer``, through the SMS code when two-factor is on."""
    api = f"{stack['gateway']}/api/v1"
    inbox = f"{stack['sms_inbox']}/messages"
    phone = customer.get("phone")

    def messages():
        return [m for m in requests.get(inbox, timeout=5).json() if phone is None or m["to"] == phone]

    seen = len(messages())
    answer = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                      "password": customer["password"]}, timeout=15).json()
    if answer["status"] == "2fa_required":
        def code():
            mine = messages()
            return len(mine) > seen and re.search(r"\b(\d{6})\b", mine[-1]["text"]).group(1)

        answer = requests.post(f"{api}/auth/2fa/verify", timeout=15,
                               json={"challenge_id": answer["challenge_id"], "code": wait_for(code, message="SMS")}).json()
    return {"Authorization": f"Bearer {answer['token']}"}


class Traffic:
    """Customers rebooting their servers, one greenthread per server, until stopped: each
    sends an action, and when it is accepted follows the operation to its end."""

    def __init__(self, api, customers):
        self.api = api
        self.customers = customers  # [(bearer header, [server ids])]
        self.accepted = {}  # operation id -> bearer header
        self.answers = Counter()
        self.running = False
        self.threads = []

    def start(self):
        self.running = True
        for bearer, servers in self.customers:
            for server_id in servers:
                self.threads.append(eventlet.spawn(self._drive, bearer, server_id))

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.wait()

    def accepted_count(self):
        return len(self.accepted)

    def _request_action(self, bearer, server_id):
        if not self.running:
            return "stopped"
        try:
            answer = requests.post(f"{self.api}/servers/{server_id}/actions", json={"action": "reboot"},
                                   headers=bearer, timeout=15)
        except requests.RequestException as error:
            self.answers[type(error).__name__] += 1
            return None
        self.answers[answer.status_code] += 1
        if answer.status_code == 202:
            operation_id = answer.json()["operation"]["id"]
            self.accepted[operation_id] = bearer
            return operation_id
        return None

    def _drive(self, bearer, server_id):
        while self.running:
            operation_id = wait_for(lambda: self._request_action(bearer, server_id), timeout=300, interval=0.2,
                                    message=f"an action accepted on {server_id}")
            if operation_id == "stopped":
                return
            wait_for(lambda: not self.running or operation_status(self.api, bearer, operation_id) in FINAL,
                     timeout=300, interval=0.2, message=f"operation {operation_id} finished")


def operation_status(api, bearer, operation_id):
    try:
        answer = requests.get(f"{api}/operations/{operation_id}", headers=bearer, timeout=15)
    except requests.RequestException:
        return None
    return answer.json().get("status") if answer.status_code == 200 else None


def current_pid(stack, name):
    return json.loads((stack["var_dir"] / "stack.json").read_text())["processes"][name]


def restart_mid_flow(stack, traffic, name, sig, mid_action):
    """Send ``sig`` to service ``name`` once ``mid_action()`` holds, wait until the stack has
    started it again, then until more actions were accepted. Returns the exit code the stack
    saw."""
    wait_for(mid_action, timeout=120, interval=0.1, message=f"work in flight before stopping {name}")
    old_pid = current_pid(stack, name)
    os.kill(old_pid, sig)
    wait_for(lambda: current_pid(stack, name) != old_pid, timeout=120, interval=0.2, message=f"{name} restarted")
    exits = re.findall(rf"\[stack\] {name} exited with code (-?\d+); restarting", stack["output"].read_text())
    before = traffic.accepted_count()
    wait_for(lambda: traffic.accepted_count() >= before + ACCEPTED_PER_PHASE, timeout=180, interval=0.2,
             message=f"actions accepted again after {name} restarted")
    wait_for(lambda: requests.get(f"{stack['gateway']}/readyz", timeout=10).status_code == 200, timeout=60,
             message="the stack ready again")
    return int(exits[-1])


def some_operation_running(traffic):
    return any(operation_status(traffic.api, bearer, op) == "running" for op, bearer in list(traffic.accepted.items())[-8:])


def log_entries(api, bearer):
    answer = requests.get(f"{api}/notifications", params={"per_page": 500}, headers=bearer, timeout=15)
    answer.raise_for_status()
    return answer.json()["items"]


def assert_nothing_accepted_was_lost(traffic):
    api = traffic.api
    unexpected = {k: v for k, v in traffic.answers.items() if k not in EXPECTED_ACTION_ANSWERS}
    assert not unexpected, f"unexpected answers to actions: {unexpected} (all: {dict(traffic.answers)})"
    for operation_id, bearer in traffic.accepted.items():
        wait_for(lambda: operation_status(api, bearer, operation_id) in FINAL, timeout=180, interval=0.3,
                 message=f"accepted operation {operation_id} reaching a final state")
    finals = {op: operation_status(api, bearer, op) for op, bearer in traffic.accepted.items()}
    assert set(finals.values()) == {"succeeded"}, f"operations that did not succeed: {finals}"
    for bearer in {id(b): b for b in traffic.accepted.values()}.values():
        mine = [op for op, b in traffic.accepted.items() if b is bearer]

        def logged():
            entries = log_entries(api, bearer)
            return all(len([e for e in entries if e["operation_id"] == op]) >= 2 for op in mine) and entries

        entries = wait_for(logged, timeout=120, interval=0.5, message="every accepted operation in the action log")
        for op in mine:
            levels = sorted(e["level"] for e in entries if e["operation_id"] == op)
            assert levels == ["info", "success"], f"{op}: action-log entries {levels} (want one started, one result)"


def start_traffic(stack):
    api = f"{stack['gateway']}/api/v1"
    customers = []
    for customer in stack["users"]:
        bearer = log_in(stack, customer)
        servers = requests.get(f"{api}/servers", headers=bearer, timeout=15).json()["items"]
        customers.append((bearer, [s["id"] for s in servers if s["status"] == "active"]))
    assert sum(len(servers) for _, servers in customers) >= 3
    traffic = Traffic(api, customers)
    traffic.start()
    return traffic


@pytest.mark.timeout(900)
def test_restarting_inventory_mid_action_loses_no_accepted_operation(stack):
    traffic = start_traffic(stack)
    try:
        wait_for(lambda: traffic.accepted_count() >= ACCEPTED_PER_PHASE, timeout=120, message="traffic flowing")
        graceful = restart_mid_flow(stack, traffic, "inventory", signal.SIGTERM, lambda: some_operation_running(traffic))
        killed = restart_mid_flow(stack, traffic, "inventory", signal.SIGKILL, lambda: some_operation_running(traffic))
    finally:
        traffic.stop()
    assert graceful == 0, "inventory did not stop cleanly on SIGTERM"
    assert killed == -signal.SIGKILL
    assert_nothing_accepted_was_lost(traffic)


@pytest.mark.timeout(900)
def test_restarting_notify_while_operations_complete_loses_no_action_log_entry(stack):
    traffic = start_traffic(stack)
    try:
        wait_for(lambda: traffic.accepted_count() >= ACCEPTED_PER_PHASE, timeout=120, message="traffic flowing")
        graceful = restart_mid_flow(stack, traffic, "notify", signal.SIGTERM, lambda: some_operation_running(traffic))
        killed = restart_mid_flow(stack, traffic, "notify", signal.SIGKILL, lambda: some_operation_running(traffic))
    finally:
        traffic.stop()
    assert graceful == 0, "notify did not stop cleanly on SIGTERM"
    assert killed == -signal.SIGKILL
    assert_nothing_accepted_was_lost(traffic)
