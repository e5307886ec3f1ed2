"""Operations end to end on a real broker: accepted at once, worked on by the owning
service through its own ``operation_requested`` (on its private ``<service>.work``
exchange: no other service receives it), started and finished exactly once, and finished
after a crash in the middle of the work (R-ASYNC-1/2, DESIGN.md)."""

import eventlet
import pytest
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.contracts import integration_types
from common.db import create_engine
from common.errors import NotFound
from common.messaging import reliable_event_handler
from common.operations import OperationFailed
from common.service import PanelService
from common.service_schema import ServiceSchema
from tests.support import store_of, wait_for

LAB_SCHEMA = ServiceSchema("lab")
WORK_GATE = {}  # operation target -> an Event the work waits for
WORK_CALLS = []


def do_work(view):
    WORK_CALLS.append(view["operation_id"])
    gate = WORK_GATE.get(view["target"])
    if gate is not None:
        gate.wait()
    if view["target"] == "broken":
        raise OperationFailed("The server did not answer its BMC.")
    if view["target"] == "crashing":
        raise KeyError("bug")
    return f"{view['target']} done", {"answer": 42}


class LabService(PanelService):
    name = "lab"
    schema = LAB_SCHEMA
    publishes = integration_types("inventory")  # the standard operation events

    @rpc
    def request_work(self, target):
        with self.store.transaction() as tx:
            return self.operations.request(
                tx, kind="lab.work", target=target, title=f"Work on {target}", user_id="user-1"
            )

    @rpc
    def get_operation(self, operation_id, user_id=None):
        return self.operations.get(operation_id, user_id=user_id)

    @reliable_event_handler("lab", "operation_requested")
    def carry_out(self, payload):
        self.operations.run(payload["data"]["operation_id"], do_work)


class Watcher:
    name = "watcher"
    seen = []
    everything = []

    @event_handler("lab", "operation_started")
    def on_started(self, payload):
        Watcher.seen.append(("started", payload["data"]))

    @event_handler("lab", "operation_succeeded")
    def on_succeeded(self, payload):
        Watcher.seen.append(("succeeded", payload["data"]))

    @event_handler("lab", "operation_failed")
    def on_failed(self, payload):
        Watcher.seen.append(("failed", payload["data"]))

    @event_handler("lab", "#")
    def on_anything(self, payload):
        Watcher.everything.append(payload["type"])


@pytest.fixture
def lab_config(amqp_uri, tmp_path):
    WORK_GATE.clear()
    WORK_CALLS.clear()
    Watcher.seen.clear()
    Watcher.everything = []
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    LAB_SCHEMA.metadata.create_all(create_engine(url))
    return {"AMQP_URI": amqp_uri, "DATABASE_URL": url, "DATABASE_CHECK_MIGRATED": False,
            "METRICS_PORT": "off", "OUTBOX_POLL_SECONDS": 0.2}


def seen_for(operation_id):
    return [(kind, data["status"]) for kind, data in Watcher.seen if data["operation_id"] == operation_id]


def test_operation_is_accepted_at_once_then_started_and_finished_exactly_once(start_service, amqp_uri, lab_config):
    start_service(Watcher)
    start_service(LabService, **lab_config)
    with ServiceRpcProxy("lab", {"AMQP_URI": amqp_uri}) as lab:
        accepted = lab.request_work("srv-1")
        assert accepted["status"] == "pending"
        assert accepted["kind"] == "lab.work" and accepted["target"] == "srv-1"

        wait_for(lambda: len(seen_for(accepted["id"])) == 2, message="started and succeeded")
        final = lab.get_operation(accepted["id"])

    assert seen_for(accepted["id"]) == [("started", "running"), ("succeeded", "succeeded")]
    assert final["status"] == "succeeded"
    assert final["detail"] == "srv-1 done"
    assert final["finished_at"] >= final["started_at"] >= final["created_at"]
    assert WORK_CALLS == [accepted["id"]]
    # Everything published on lab.events: the operation's progress, never the work itself.
    assert Watcher.everything == ["operation_started", "operation_succeeded"]


def test_failed_work_ends_in_operation_failed_with_a_readable_detail(start_service, amqp_uri, lab_config):
    start_service(Watcher)
    start_service(LabService, **lab_config)
    with ServiceRpcProxy("lab", {"AMQP_URI": amqp_uri}) as lab:
        broken = lab.request_work("broken")
        crashing = lab.request_work("crashing")
        wait_for(lambda: len(seen_for(broken["id"])) == 2 and len(seen_for(crashing["id"])) == 2,
                 message="both operations finished")
        assert lab.get_operation(broken["id"])["detail"] == "The server did not answer its BMC."
        # An unexpected error never leaves an operation running, nor leaks internals.
        assert lab.get_operation(crashing["id"])["detail"] == "The operation failed because of an internal error."
    assert seen_for(broken["id"])[-1] == ("failed", "failed")
    assert seen_for(crashing["id"])[-1] == ("failed", "failed")


def test_operations_are_only_visible_to_their_owner(start_service, amqp_uri, lab_config):
    start_service(LabService, **lab_config)
    with ServiceRpcProxy("lab", {"AMQP_URI": amqp_uri}) as lab:
        accepted = lab.request_work("srv-1")
        assert lab.get_operation(accepted["id"], user_id="user-1")["id"] == accepted["id"]
        with pytest.raises(NotFound):
            lab.get_operation(accepted["id"], user_id="someone-else")


def test_work_interrupted_by_a_crash_is_finished_after_restart(start_service, amqp_uri, lab_config):
    start_service(Watcher)
    WORK_GATE["slow"] = eventlet.event.Event()  # the work blocks until the gate opens
    first = start_service(LabService, **lab_config)
    with ServiceRpcProxy("lab", {"AMQP_URI": amqp_uri}) as lab:
        accepted = lab.request_work("slow")
        wait_for(lambda: seen_for(accepted["id"]) == [("started", "running")], message="work started")
        first.kill()  # the process dies mid-work: the message was never acked

        WORK_GATE["slow"].send()
        second = start_service(LabService, **lab_config)
        wait_for(lambda: lab.get_operation(accepted["id"])["status"] == "succeeded", timeout=20,
                 message="operation finished after restart")

    events = store_of(second).load_stream(f"operation-{accepted['id']}")
    assert [e.type for e in events] == ["operation_requested", "operation_started", "operation_succeeded"]
    assert WORK_CALLS == [accepted["id"], accepted["id"]]  # resumed, not restarted from scratch
