"""``python -m deploy.dlq``: an operator reads what a reliable handler parked, requeues it
after the fix, and the handler then processes it once; the depths reach Prometheus."""

import json
import subprocess
import sys
import threading

import requests
from kombu import Connection

from common import topology
from deploy.components import service_class
from common.config import REPO_ROOT, SERVICES
from common.messaging import ReliableEventHandler, reliable_event_handler
from common.service import PanelService
from deploy import dlq
from tests.conftest import queue_depth
from tests.integration.test_outbox_and_consumers import ledger_relay
from tests.support import (
    credited,
    free_port,
    make_schema,
    make_store,
    store_of,
    wait_for,
)

KEEPER_SCHEMA, KEEPER_BALANCES = make_schema("keeper")
POISONED = set()
DELIVERED = []  # every delivery to the handler
HANDLED = []  # deliveries that had an effect (the inbox drops the others)


class KeeperService(PanelService):
    """Mirrors ledger credits; fails for the accounts in ``POISONED`` (a bug, until fixed)."""

    name = "keeper"
    schema = KEEPER_SCHEMA

    @reliable_event_handler("ledger", "credited", max_deliveries=2, retry_delays=(0.05,))
    def on_credited(self, payload):
        DELIVERED.append(payload["event_id"])
        if payload["stream_id"] in POISONED:
            raise RuntimeError("keeper bug: cannot mirror this account")
        with self.store.transaction() as tx:
            if tx.record_inbox("keeper.on_credited", payload["event_id"]):
                HANDLED.append(payload["event_id"])
                tx.append(f"keeper-{payload['stream_id']}", None, [credited(payload["data"]["amount"])])


MAIN, _, DEAD_LETTERS = ReliableEventHandler.queue_names("ledger", "credited", "keeper", "on_credited")


def run_dlq(amqp_uri, *args):
    result = subprocess.run([sys.executable, "-m", "deploy.dlq", "--amqp-uri", amqp_uri, *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    return result


def start_keeper(start_service, amqp_uri, tmp_path):
    from common.db import create_engine

    url = f"sqlite:///{tmp_path / 'keeper.db'}"
    KEEPER_SCHEMA.metadata.create_all(create_engine(url))
    HANDLED.clear()
    DELIVERED.clear()
    container = start_service(KeeperService, AMQP_URI=amqp_uri, DATABASE_URL=url, DATABASE_CHECK_MIGRATED=False,
                              METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2)
    return store_of(container)


def keeper_balance(store, account):
    from tests.support import balance_of

    return balance_of(store, KEEPER_BALANCES, f"keeper-{account}")


def test_a_parked_event_is_shown_then_requeued_and_handled_once(start_service, amqp_uri, tmp_path):
    keeper = start_keeper(start_service, amqp_uri, tmp_path)
    POISONED.add("acc-7")
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-7", 0, [credited(7)])
    ledger_relay(amqp_uri, ledger).drain()
    wait_for(lambda: queue_depth(amqp_uri, DEAD_LETTERS) == 1, timeout=20, message="the event parked")

    shown = run_dlq(amqp_uri, "show", DEAD_LETTERS)
    assert shown.returncode == 0, shown.stderr
    [entry] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert entry["type"] == "credited" and entry["stream_id"] == "acc-7"
    assert entry["attempts"] == 3 and "keeper bug" in entry["last_error"]
    assert queue_depth(amqp_uri, DEAD_LETTERS) == 1  # showing leaves it parked

    POISONED.discard("acc-7")  # the fix is deployed
    requeued = run_dlq(amqp_uri, "requeue", DEAD_LETTERS)
    assert requeued.returncode == 0, requeued.stderr
    assert f"requeued 1 from {DEAD_LETTERS} to {MAIN}" in requeued.stdout

    wait_for(lambda: keeper_balance(keeper, "acc-7") == 7, timeout=20, message="the requeued event handled")
    assert queue_depth(amqp_uri, DEAD_LETTERS) == 0
    assert len(HANDLED) == 1


def test_requeueing_twice_is_harmless_thanks_to_the_inbox(start_service, amqp_uri, tmp_path):
    """A requeue interrupted after publishing (before its ack) delivers the event again."""
    keeper = start_keeper(start_service, amqp_uri, tmp_path)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-8", 0, [credited(8)])
    ledger_relay(amqp_uri, ledger).drain()
    wait_for(lambda: keeper_balance(keeper, "acc-8") == 8, message="handled the first time")
    # The same event parked twice: what a requeue interrupted between publish and ack leaves.
    body = {"event_id": HANDLED[0], "type": "credited", "source": "ledger", "stream_id": "acc-8",
            "data": {"amount": 8}}
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        for _ in range(2):
            producer.publish(body, exchange="", routing_key=DEAD_LETTERS, serializer="json", delivery_mode=2)
    assert run_dlq(amqp_uri, "requeue", DEAD_LETTERS).returncode == 0
    wait_for(lambda: DELIVERED.count(HANDLED[0]) == 3, message="both requeued copies delivered")
    assert queue_depth(amqp_uri, DEAD_LETTERS) == 0
    assert keeper_balance(keeper, "acc-8") == 8 and len(HANDLED) == 1


def test_list_names_every_services_dead_letter_queue_with_its_depth(amqp_uri):
    topology.declare(amqp_uri, [service_class(s) for s in SERVICES])
    queues = dlq.known_queues()
    notify_queue = next(q for q in queues if q.service == "notify")
    with Connection(amqp_uri) as connection:
        connection.Producer().publish({"event_id": "e-1", "type": "operation_started"}, exchange="",
                                      routing_key=notify_queue.name, serializer="json", delivery_mode=2)

    listed = run_dlq(amqp_uri, "list")

    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[1]: line.split()[0] for line in listed.stdout.splitlines()}
    assert lines[notify_queue.name] == "1"
    assert set(lines) == {q.name for q in queues}
    assert all(count == "0" for name, count in lines.items() if name != notify_queue.name)


def test_purge_refuses_without_yes_and_drops_with_it(amqp_uri):
    topology.declare(amqp_uri, [service_class("notify")])
    queue = next(q for q in dlq.known_queues() if q.service == "notify")
    with Connection(amqp_uri) as connection:
        connection.Producer().publish({"event_id": "e-2"}, exchange="", routing_key=queue.name,
                                      serializer="json", delivery_mode=2)

    refused = run_dlq(amqp_uri, "purge", queue.name)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert queue_depth(amqp_uri, queue.name) == 1

    dropped = run_dlq(amqp_uri, "purge", queue.name, "--yes")
    assert dropped.returncode == 0 and f"dropped 1 from {queue.name}" in dropped.stdout
    assert queue_depth(amqp_uri, queue.name) == 0


def test_serve_metrics_exports_each_dead_letter_depth(amqp_uri):
    topology.declare(amqp_uri, [service_class(s) for s in SERVICES])
    queue = next(q for q in dlq.known_queues() if q.service == "notify")
    with Connection(amqp_uri) as connection:
        connection.Producer().publish({"event_id": "e-3"}, exchange="", routing_key=queue.name,
                                      serializer="json", delivery_mode=2)
    port = free_port()
    stop = threading.Event()
    server = threading.Thread(target=dlq.serve_metrics, args=(amqp_uri, "127.0.0.1", port, stop), daemon=True)
    server.start()
    try:
        text = wait_for(lambda: _scrape(f"http://127.0.0.1:{port}/metrics"), message="the exporter answering")
        assert f'panel_dead_letter_messages{{queue="{queue.name}",service="notify"}} 1.0' in text
        assert "panel_dead_letter_broker_up 1.0" in text
    finally:
        stop.set()
        server.join(10)


def _scrape(url):
    try:
        return requests.get(url, timeout=5).text
    except requests.ConnectionError:
        return None
