"""The outbox relay and reliable consumers against a real RabbitMQ (a vhost per test).

A "ledger" store publishes ``credited`` events; a "mirror" nameko service consumes them
with a reliable handler and the inbox, appending each amount to its own log. The mirror's
balance therefore says how many times the effect happened.
"""

import os
import socket
import subprocess
from datetime import datetime, timedelta, timezone

import eventlet
import sqlalchemy as sa
from kombu import Connection
from nameko.events import event_handler

from common.eventstore.outbox import OutboxRelay
from common.messaging import (
    ATTEMPT_HEADER,
    ConfirmedPublisher,
    ReliableEventHandler,
    reliable_event_handler,
)
from common.service import PanelService
from tests.conftest import queue_depth
from tests.support import (
    balance_of,
    credited,
    make_schema,
    make_store,
    store_of,
    wait_for,
)

MIRROR_SCHEMA, MIRROR_BALANCES = make_schema("mirror")
DELIVERIES = []
FAIL_FIRST = set()
ALWAYS_FAIL = set()


def mirror_effect(store, payload):
    with store.transaction() as tx:
        if tx.record_inbox("mirror.on_credited", payload["event_id"]):
            tx.append(f"mirror-{payload['stream_id']}", None, [credited(payload["data"]["amount"])])


class MirrorService(PanelService):
    name = "mirror"
    schema = MIRROR_SCHEMA

    @reliable_event_handler("ledger", "credited", max_deliveries=3, retry_delays=(0.1, 0.2))
    def on_credited(self, payload):
        DELIVERIES.append(payload["event_id"])
        stream = payload["stream_id"]
        if stream in ALWAYS_FAIL:
            raise RuntimeError("poison")
        if stream in FAIL_FIRST:
            FAIL_FIRST.discard(stream)
            raise RuntimeError("transient failure")
        mirror_effect(self.store, payload)


def mirror_config(amqp_uri, tmp_path):
    url = f"sqlite:///{tmp_path / 'mirror.db'}"
    from common.db import create_engine

    MIRROR_SCHEMA.metadata.create_all(create_engine(url))
    return {
        "AMQP_URI": amqp_uri, "DATABASE_URL": url, "DATABASE_CHECK_MIGRATED": False,
        "METRICS_PORT": "off", "OUTBOX_POLL_SECONDS": 0.2,
    }


def start_mirror(start_service, amqp_uri, tmp_path):
    DELIVERIES.clear()
    FAIL_FIRST.clear()
    ALWAYS_FAIL.clear()
    container = start_service(MirrorService, **mirror_config(amqp_uri, tmp_path))
    return container, store_of(container)


def ledger_relay(amqp_uri, store):
    return OutboxRelay(store, ConfirmedPublisher(amqp_uri, "ledger"), "ledger", {"credited"})


def mirrored(store, account):
    return balance_of(store, MIRROR_BALANCES, f"mirror-{account}")


def test_relay_publishes_integration_events_in_order_and_advances_its_checkpoint(amqp_uri, tmp_path):
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(1), credited(2)])
    ledger.append("acc-2", 0, [credited(3)])
    from kombu import Queue

    from common.messaging import event_exchange

    queue = Queue("spy", exchange=event_exchange("ledger"), routing_key="#", durable=False)
    with Connection(amqp_uri) as connection:
        queue(connection.channel()).declare()
        relay = ledger_relay(amqp_uri, ledger)
        assert relay.backlog() == 3

        assert relay.drain() == 3

        assert relay.backlog() == 0
        assert relay.checkpoint() == ledger.last_position()
        received = []
        with connection.Consumer(queue, callbacks=[lambda body, msg: (received.append((body, msg.headers)), msg.ack())]):
            wait_for(lambda: connection.drain_events(timeout=2) or len(received) == 3, message="3 messages")
    bodies = [body for body, _ in received]
    assert [b["data"]["amount"] for b in bodies] == [1, 2, 3]
    assert [b["position"] for b in bodies] == sorted(b["position"] for b in bodies)
    assert {b["source"] for b in bodies} == {"ledger"}
    assert bodies[0]["type"] == "credited" and bodies[0]["stream_id"] == "acc-1"
    assert set(bodies[0]) >= {"event_id", "type", "source", "stream_id", "version", "occurred_at",
                              "user_id", "correlation_id", "data"}
    # nameko call-context headers: the consumer's worker sees the causing event.
    assert received[0][1]["nameko.causation_id"] == bodies[0]["event_id"]


def test_relay_skips_internal_events_but_moves_past_them(amqp_uri, tmp_path):
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(1)])
    ledger.append("acc-1", 1, [credited(2)])
    relay = OutboxRelay(ledger, ConfirmedPublisher(amqp_uri, "ledger"), "ledger", {"something_else"})
    assert relay.drain() == 0
    assert relay.checkpoint() == ledger.last_position()


def test_consumer_effect_happens_once_per_event(start_service, amqp_uri, tmp_path):
    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(10), credited(5)])

    ledger_relay(amqp_uri, ledger).drain()

    wait_for(lambda: mirrored(mirror, "acc-1") == 15, message="mirror balance 15")
    assert len(DELIVERIES) == 2


def test_crash_between_publish_and_checkpoint_republishes_and_the_effect_happens_once(
    start_service, amqp_uri, tmp_path
):
    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(10), credited(5)])

    crashing = ledger_relay(amqp_uri, ledger)

    def crash(position):
        raise SystemError("process died before saving the checkpoint")

    crashing._advance = crash
    try:
        crashing.relay_once()
    except SystemError:
        pass
    assert crashing.checkpoint() == 0  # published, but the checkpoint did not move
    wait_for(lambda: len(DELIVERIES) == 2, message="first publication consumed")

    # The restarted relay takes over once the dead one's lease expires.
    restarted = ledger_relay(amqp_uri, ledger)
    with ledger.transaction() as tx:
        tx.conn.execute(ledger.tables.relay_checkpoints.update().values(lease_until=None, owner=None))
    assert restarted.drain() == 2

    wait_for(lambda: len(DELIVERIES) == 4, message="republished events consumed")
    assert DELIVERIES[:2] == DELIVERIES[2:]  # the same event ids, delivered twice
    assert mirrored(mirror, "acc-1") == 15  # ...but the effect happened once


def test_what_a_handler_appends_records_the_handled_event_as_its_cause(start_service, amqp_uri, tmp_path):
    """DESIGN.md: an event appended while handling another names it as its causation
    (issue 22: the call context dropped the id, so nothing recorded it)."""
    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    [cause] = ledger.append("acc-9", 0, [credited(4)])
    ledger_relay(amqp_uri, ledger).drain()
    wait_for(lambda: mirrored(mirror, "acc-9") == 4, message="the event handled")
    [effect] = mirror.load_stream("mirror-acc-9")
    assert effect.metadata["causation_id"] == cause.event_id


def test_only_one_relay_holds_the_lease_at_a_time(amqp_uri, tmp_path):
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(1)])
    first, second = ledger_relay(amqp_uri, ledger), ledger_relay(amqp_uri, ledger)

    assert first.relay_once() == 1
    ledger.append("acc-1", 1, [credited(2)])
    assert second.relay_once() == 0  # the first one's lease is still running
    first.release()
    assert second.relay_once() == 1


def test_the_lease_of_a_relay_whose_process_died_is_taken_over_at_once(amqp_uri, tmp_path):
    """A killed service's replacement publishes at once, not when the dead relay's lease
    would have run out (issue 20: accepted work waited a minute after a kill -9)."""
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(1)])
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process of this machine that no longer runs
    with ledger.transaction() as tx:
        tx.conn.execute(ledger.tables.relay_checkpoints.update().values(
            owner=f"{socket.gethostname()}:{gone.pid}:deadbeef",
            lease_until=datetime.now(timezone.utc) + timedelta(minutes=5)))
    assert ledger_relay(amqp_uri, ledger).relay_once() == 1
    # a live owner's lease (this process: another relay of ours) is respected
    ledger.append("acc-1", 1, [credited(2)])
    with ledger.transaction() as tx:
        tx.conn.execute(ledger.tables.relay_checkpoints.update().values(
            owner=f"{socket.gethostname()}:{os.getppid()}:cafe",
            lease_until=datetime.now(timezone.utc) + timedelta(minutes=5)))
    assert ledger_relay(amqp_uri, ledger).relay_once() == 0


def test_a_relay_keeps_its_short_lease_while_a_batch_waits_for_confirms(amqp_uri, tmp_path):
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(1)])
    publish = ConfirmedPublisher(amqp_uri, "ledger")

    def slow_publisher(envelopes):
        eventlet.sleep(1.5)  # the broker's confirms take longer than the whole lease
        return publish(envelopes)

    slow = OutboxRelay(ledger, slow_publisher, "ledger", {"credited"}, lease_seconds=0.6)
    other = OutboxRelay(ledger, publish, "ledger", {"credited"}, lease_seconds=0.6)
    publishing = eventlet.spawn(slow.relay_once)
    eventlet.sleep(1.0)  # past the lease: only its renewal keeps the other relay out
    assert other.relay_once() == 0
    assert publishing.wait() == 1 and slow.checkpoint() == ledger.last_position()


def test_two_relays_finding_the_lease_free_at_once_cannot_both_take_it(amqp_uri, postgres_url):
    """PostgreSQL, replicas racing for the lease: another replica's transaction takes it
    while this relay's own attempt waits on the row; once that commits, this relay must see
    the lease held and publish nothing (taking the lease after reading it free would let two
    relays publish the same events)."""
    ledger, _ = make_store(postgres_url)
    ledger.append("acc-1", 0, [credited(1)])
    relay = ledger_relay(amqp_uri, ledger)
    checkpoints = ledger.tables.relay_checkpoints
    with ledger.engine.connect() as other_replica:
        taking = other_replica.begin()
        other_replica.execute(checkpoints.update().values(
            owner="other-replica", lease_until=datetime.now(timezone.utc) + timedelta(minutes=1)))
        attempt = eventlet.spawn(relay.relay_once)
        wait_for(lambda: lease_waiters(ledger.engine) == 1, message="the relay waiting for the lease row")
        taking.commit()
        assert attempt.wait() == 0
    assert relay.checkpoint() == 0
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(checkpoints.c.owner)).scalar_one() == "other-replica"


def lease_waiters(engine):
    """Sessions of this database waiting for a row lock."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )).scalar_one()


def test_a_handler_that_fails_once_processes_the_event_later_once(start_service, amqp_uri, tmp_path):
    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)
    FAIL_FIRST.add("acc-1")
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(7)])

    ledger_relay(amqp_uri, ledger).drain()

    wait_for(lambda: mirrored(mirror, "acc-1") == 7, message="retried event processed")
    assert len(DELIVERIES) == 2 and DELIVERIES[0] == DELIVERIES[1]


def test_a_poison_message_is_parked_in_the_dead_letter_queue(start_service, amqp_uri, tmp_path, rabbit_api):
    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)
    ALWAYS_FAIL.add("bad")
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("bad", 0, [credited(1)])
    ledger.append("good", 0, [credited(2)])

    ledger_relay(amqp_uri, ledger).drain()

    main, _, dlq = ReliableEventHandler.queue_names("ledger", "credited", "mirror", "on_credited")
    with Connection(amqp_uri) as connection:
        parked = wait_for(lambda: connection.SimpleQueue(dlq).get(timeout=5), timeout=15, message="message in the DLQ")
        assert parked.payload["stream_id"] == "bad"
        assert parked.headers[ATTEMPT_HEADER] == 4  # three deliveries, then parked
        assert "poison" in parked.headers["x-panel-last-error"]
        parked.ack()
    assert DELIVERIES.count(parked.payload["event_id"]) == 3
    assert mirrored(mirror, "good") == 2  # the poison did not block the queue
    assert mirrored(mirror, "bad") is None
    assert queue_depth(amqp_uri, main) == 0


def test_declared_topology_keeps_events_published_before_the_consumer_starts(
    start_service, amqp_uri, tmp_path
):
    """Events published while no consumer runs wait in the pre-declared durable queue."""
    from common import topology

    topology.declare(amqp_uri, [MirrorService])
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-1", 0, [credited(4)])
    ledger_relay(amqp_uri, ledger).drain()

    _, mirror = start_mirror(start_service, amqp_uri, tmp_path)

    wait_for(lambda: mirrored(mirror, "acc-1") == 4, message="event published before start consumed")


class PlainListener:
    """A plain nameko handler (not ours) receives the envelope as published."""

    name = "listener"
    seen = []

    @event_handler("ledger", "credited")
    def on_credited(self, payload):
        PlainListener.seen.append(payload)


def test_plain_nameko_event_handlers_receive_relayed_envelopes(start_service, amqp_uri, tmp_path):
    PlainListener.seen.clear()
    start_service(PlainListener)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc-9", 0, [credited(9)])
    ledger_relay(amqp_uri, ledger).drain()
    wait_for(lambda: PlainListener.seen, message="listener got the event")
    assert PlainListener.seen[0]["data"] == {"amount": 9}
