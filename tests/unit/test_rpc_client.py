"""Pieces of the RPC client and of the batched confirms that need no broker: the call
context headers, the injected cluster's shape, and the confirm bookkeeping of
``ConfirmedPublisher`` (which envelopes of a batch are safe to move the checkpoint past)."""

import pytest

from common.messaging import _Batch
from common.rpc import TimedCluster
from common.rpc_client import context_headers


def test_context_headers_are_namekos_and_skip_empty_values():
    data = {"user_id": "u-1", "session_id": None, "request_id": "r-1", "call_id_stack": ["a.b.1"]}
    assert context_headers(data) == {
        "nameko.user_id": "u-1", "nameko.request_id": "r-1", "nameko.call_id_stack": ["a.b.1"],
    }


class FakeWorker:
    context_data = {"correlation_id": "c-1"}


class RecordingClient:
    def __init__(self):
        self.calls = []

    def call(self, service, method, args, kwargs, headers, timeout):
        self.calls.append((service, method, args, kwargs, headers, timeout))
        return "answer"


def test_the_cluster_calls_service_methods_with_the_default_or_a_given_limit():
    client = RecordingClient()
    cluster = TimedCluster(client, FakeWorker(), timeout=5)
    assert cluster.auth.login("ann", password="pw") == "answer"
    assert cluster.inventory.health.call(timeout=2) == "answer"
    assert client.calls == [
        ("auth", "login", ("ann",), {"password": "pw"}, {"nameko.correlation_id": "c-1"}, 5),
        ("inventory", "health", (), {}, {"nameko.correlation_id": "c-1"}, 2),
    ]


def test_the_cluster_does_not_pretend_to_have_dunder_attributes():
    cluster = TimedCluster(RecordingClient(), FakeWorker(), timeout=5)
    with pytest.raises(AttributeError):
        cluster.__deepcopy__
    with pytest.raises(AttributeError):
        cluster.auth.__length_hint__


def test_a_multiple_ack_confirms_everything_up_to_its_tag():
    batch = _Batch(first_tag=11, message_ids=["a", "b", "c", "d"])
    batch.settle(13, multiple=True, ok=True)
    assert not batch.settled() and batch.prefix() == 3
    batch.settle(14, multiple=False, ok=True)
    assert batch.settled() and batch.prefix() == 4


def test_a_nack_in_the_middle_stops_the_confirmed_prefix_there():
    batch = _Batch(first_tag=1, message_ids=["a", "b", "c", "d"])
    batch.settle(1, multiple=False, ok=True)
    batch.settle(2, multiple=False, ok=False)
    batch.settle(4, multiple=True, ok=True)
    assert batch.settled()
    assert batch.prefix() == 1


def test_a_returned_message_is_not_confirmed_by_the_ack_that_follows_it():
    batch = _Batch(first_tag=1, message_ids=["a", "b", "c"])
    batch.returned("b")
    batch.settle(3, multiple=True, ok=True)
    assert batch.prefix() == 1
    assert batch.failure


def test_confirms_of_an_earlier_batch_are_ignored():
    batch = _Batch(first_tag=5, message_ids=["a"])
    batch.settle(4, multiple=True, ok=True)
    assert not batch.settled()
