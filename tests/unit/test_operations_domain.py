"""The operation state machine (no I/O): pending → running → succeeded | failed."""

import pytest

from common.contracts import OPERATION_FIELDS, envelope, events_doc, integration_types
from common.errors import Conflict
from common.eventstore import RecordedEvent
from common.operations import Operation

NOW = "2026-11-23T10:00:00+00:00"


def recorded(events):
    return [
        RecordedEvent(position=i, stream_id="operation-op1", version=i, type=e.type, data=e.data,
                      metadata={"event_id": f"e{i}"}, recorded_at=None)
        for i, e in enumerate(events, start=1)
    ]


def requested():
    return Operation.request(operation_id="op1", service="inventory", kind="server.reboot",
                             target="srv-1", title="Reboot srv-1", user_id="u1", session_id="s1",
                             params={"force": True}, now=NOW)


def test_a_requested_operation_is_pending_with_its_view():
    event = requested()
    assert event.type == "operation_requested"
    assert event.data["status"] == "pending"
    assert set(OPERATION_FIELDS) <= set(event.data)


def test_start_then_succeed():
    history = [requested()]
    op = Operation.replay(recorded(history))
    history += op.start(NOW)
    op = Operation.replay(recorded(history))
    assert op.status == "running" and op.view["started_at"] == NOW
    history += op.succeed("Rebooted", {"power": "on"}, NOW)
    final = Operation.replay(recorded(history))
    assert final.status == "succeeded"
    assert final.view["detail"] == "Rebooted" and final.view["result"] == {"power": "on"}
    assert [e.type for e in history] == ["operation_requested", "operation_started", "operation_succeeded"]


def test_starting_again_after_a_crash_records_nothing_new():
    history = [requested()]
    history += Operation.replay(recorded(history)).start(NOW)
    assert Operation.replay(recorded(history)).start(NOW) == []


def test_a_finished_operation_cannot_start_succeed_or_fail_again():
    history = [requested()]
    history += Operation.replay(recorded(history)).fail("BMC unreachable", NOW)
    failed = Operation.replay(recorded(history))
    assert failed.status == "failed"
    for change in (lambda: failed.start(NOW), lambda: failed.succeed("x", None, NOW), lambda: failed.fail("x", NOW)):
        with pytest.raises(Conflict):
            change()


def test_success_requires_running():
    with pytest.raises(Conflict):
        Operation.replay(recorded([requested()])).succeed("done", None, NOW)


def test_envelope_has_every_documented_field():
    [event] = recorded([requested()])
    event = RecordedEvent(**{**event.__dict__, "recorded_at": __import__("datetime").datetime(2026, 1, 1)})
    body = envelope(event, "inventory")
    assert {"event_id", "type", "source", "stream_id", "version", "occurred_at", "user_id",
            "correlation_id", "data"} <= set(body)
    assert body["source"] == "inventory" and body["event_id"] == "e1"


def test_the_event_list_documents_operation_events_for_every_source():
    assert integration_types("inventory") >= {"operation_started", "operation_succeeded", "operation_failed"}
    doc = events_doc()
    assert "## inventory (exchange `inventory.events`)" in doc
    assert "`operation_succeeded`" in doc


def test_docs_events_md_is_the_generated_list():
    """docs/events.md is what `panel events-doc` prints: regenerate it when events change."""
    from common.config import REPO_ROOT

    assert (REPO_ROOT / "docs" / "events.md").read_text() == events_doc() + "\n"


def test_conclude_starts_and_finishes_a_pending_operation_at_once_and_never_twice():
    history = [requested()]
    history += Operation.replay(recorded(history)).conclude(True, "Paid", {"amount": "25.00"}, NOW)
    assert [e.type for e in history] == ["operation_requested", "operation_started", "operation_succeeded"]
    assert Operation.replay(recorded(history)).conclude(False, "Failed", None, NOW) == []
    failed = [requested()] + Operation.replay(recorded([requested()])).conclude(False, "Declined", None, NOW)
    assert Operation.replay(recorded(failed)).status == "failed"


def test_the_oldest_pending_and_running_operations_ages_are_measured(tmp_path):
    """The gauges behind the "operations stuck" alert."""
    from datetime import timedelta

    from common import context
    from common.db import create_engine
    from common.eventstore import utcnow
    from common.operations import Operations
    from common.service_schema import ServiceSchema

    schema = ServiceSchema("lab")
    engine = create_engine(f"sqlite:///{tmp_path / 'lab.db'}")
    schema.metadata.create_all(engine)
    store = schema.create_store(engine)
    operations = Operations(store, "lab", schema.operations_table)
    assert operations.oldest_active_ages(utcnow()) == {"pending": 0.0, "running": 0.0}
    token = context.bind({"user_id": "ann"})
    try:
        first, second = [operations.new_id() for _ in range(2)]
        for operation_id in (first, second):
            with store.transaction() as tx:
                operations.request(tx, kind="lab.x", target="t", title="x", operation_id=operation_id)
        operations.start(first)
    finally:
        context.unbind(token)
    ages = operations.oldest_active_ages(utcnow() + timedelta(minutes=20))
    assert 20 * 60 <= ages["pending"] < 21 * 60 and 20 * 60 <= ages["running"] < 21 * 60
