"""The outbox relay publishes in batches with pipelined confirms (``ConfirmedPublisher``),
against a real RabbitMQ (a vhost per test): the order of the log is the order on the wire,
and the checkpoint only moves past events whose confirm arrived — a nack, a return or a
lost connection makes the relay publish again from the first unconfirmed event, never skip
it."""

import socket
import time

import pytest
import requests
from kombu import Connection, Queue

from common.eventstore.outbox import OutboxRelay
from common.messaging import ConfirmedPublisher, PublishIncomplete, event_exchange
from tests.conftest import RABBIT_API, RABBIT_AUTH
from tests.support import credited, debited, make_store, wait_for


def spy_queue(amqp_uri, name="spy", routing_key="#", **arguments):
    queue = Queue(name, exchange=event_exchange("ledger"), routing_key=routing_key, durable=False,
                  queue_arguments=arguments or None)
    with Connection(amqp_uri) as connection:
        queue(connection.channel()).declare()
    return queue


def take(amqp_uri, queue, count, timeout=10):
    """Consume (and ack) ``count`` messages from ``queue``; their bodies in order."""
    bodies = []
    with Connection(amqp_uri) as connection:
        def on_message(body, message):
            bodies.append(body)
            message.ack()

        with connection.Consumer(queue, callbacks=[on_message], prefetch_count=1000):
            deadline = time.monotonic() + timeout
            while len(bodies) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out waiting for {count} messages (got {len(bodies)})"
                try:
                    connection.drain_events(timeout=remaining)
                except socket.timeout:
                    pass
    return bodies


def fill(ledger, streams, per_stream):
    for index in range(per_stream):
        for stream in streams:
            ledger.append(stream, index, [credited(index)])


def test_a_large_backlog_goes_out_in_batches_in_log_order(amqp_uri, tmp_path):
    queue = spy_queue(amqp_uri)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    fill(ledger, ["a", "b", "c"], 400)  # 1,200 events: three relay batches of 500 at most
    relay = OutboxRelay(ledger, ConfirmedPublisher(amqp_uri, "ledger", window=300), "ledger", {"credited"})

    assert relay.drain() == 1200

    assert relay.checkpoint() == ledger.last_position()
    bodies = take(amqp_uri, queue, 1200)
    assert [b["position"] for b in bodies] == sorted(b["position"] for b in bodies)
    for stream in "abc":
        assert [b["version"] for b in bodies if b["stream_id"] == stream] == list(range(1, 401))


def test_nacked_events_are_published_again_and_the_checkpoint_stops_before_them(amqp_uri, tmp_path):
    """A queue that holds 3 messages and rejects more makes the broker nack the rest."""
    queue = spy_queue(amqp_uri, "small", **{"x-max-length": 3, "x-overflow": "reject-publish"})
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc", 0, [credited(1), debited(1), credited(2), credited(3), credited(4)])
    ledger.append("acc", 5, [debited(2), credited(5), credited(6), credited(7)])
    publisher = ConfirmedPublisher(amqp_uri, "ledger")
    relay = OutboxRelay(ledger, publisher, "ledger", {"credited"})
    events = ledger.read_after(0)

    with pytest.raises(PublishIncomplete) as raised:
        relay.drain()
    assert raised.value.confirmed == 3  # credited 1, 2, 3
    # Past the third credited event (and nothing after it): the fourth is next.
    assert relay.checkpoint() == events[3].position

    received = take(amqp_uri, queue, 3)
    for _ in range(5):  # each round: 3 fit, the rest is nacked and tried again
        try:
            relay.drain()
            break
        except PublishIncomplete:
            received += take(amqp_uri, queue, 3)
    received += take(amqp_uri, queue, 7 - len(received)) if len(received) < 7 else []

    assert [b["data"]["amount"] for b in received] == [1, 2, 3, 4, 5, 6, 7]  # each once, in order
    assert relay.checkpoint() == ledger.last_position()


def test_with_mandatory_a_returned_event_is_not_confirmed(amqp_uri):
    spy_queue(amqp_uri, "only-credited", routing_key="credited")
    publisher = ConfirmedPublisher(amqp_uri, "ledger", mandatory=True)
    envelopes = [
        {"event_id": f"e{i}", "type": kind, "data": {}} for i, kind in enumerate(["credited", "credited", "debited", "credited"])
    ]
    with pytest.raises(PublishIncomplete) as raised:
        publisher(envelopes)
    assert raised.value.confirmed == 2
    assert publisher([envelopes[0]]) == 1  # a new channel, all well


def test_without_mandatory_an_event_nobody_subscribes_to_is_not_a_failure(amqp_uri):
    publisher = ConfirmedPublisher(amqp_uri, "ledger")
    assert publisher([{"event_id": "e1", "type": "nobody_listens", "data": {}}]) == 1


def test_a_lost_connection_fails_the_batch_and_the_next_run_publishes_it(amqp_uri, tmp_path):
    queue = spy_queue(amqp_uri)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append("acc", 0, [credited(1)])
    publisher = ConfirmedPublisher(amqp_uri, "ledger")
    relay = OutboxRelay(ledger, publisher, "ledger", {"credited"})
    assert relay.drain() == 1

    def ours():
        answer = requests.get(f"{RABBIT_API}/vhosts/{amqp_uri.rsplit('/', 1)[1]}/connections",
                              auth=RABBIT_AUTH, timeout=10).json()
        return [c["name"] for c in answer
                if (c.get("client_properties") or {}).get("connection_name") == publisher.connection_name]

    for name in wait_for(ours, message="the publisher's connection"):
        requests.delete(f"{RABBIT_API}/connections/{requests.utils.quote(name, safe='')}",
                        auth=RABBIT_AUTH, timeout=10).raise_for_status()
    checkpoint = relay.checkpoint()
    ledger.append("acc", 1, [credited(2), credited(3)])

    try:
        relay.drain()
    except PublishIncomplete as incomplete:
        assert incomplete.confirmed == 0
        assert relay.checkpoint() == checkpoint
        assert relay.drain() == 2
    assert relay.checkpoint() == ledger.last_position()
    amounts = [b["data"]["amount"] for b in take(amqp_uri, queue, 3)]
    assert amounts == [1, 2, 3]


def test_one_by_one_mode_publishes_the_same(amqp_uri, tmp_path):
    queue = spy_queue(amqp_uri)
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    fill(ledger, ["a"], 20)
    relay = OutboxRelay(ledger, ConfirmedPublisher(amqp_uri, "ledger", window=1), "ledger", {"credited"})
    assert relay.drain() == 20
    assert [b["version"] for b in take(amqp_uri, queue, 20)] == list(range(1, 21))


def test_internal_events_move_the_checkpoint_only_when_far_behind(amqp_uri, tmp_path):
    ledger, _ = make_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    relay = OutboxRelay(ledger, ConfirmedPublisher(amqp_uri, "ledger"), "ledger", {"credited"},
                        idle_advance_after=5)
    ledger.append("acc", 0, [debited(1), debited(2)])

    assert relay.drain() == 0
    assert relay.checkpoint() == 0  # no lease taken, no checkpoint written

    ledger.append("acc", 2, [credited(3)])
    assert relay.drain() == 1
    assert relay.checkpoint() == ledger.last_position()  # past the internal ones too

    ledger.append("acc", 3, [debited(1)] * 5)
    assert relay.drain() == 0
    assert relay.checkpoint() == ledger.last_position()  # 5 behind: moved
