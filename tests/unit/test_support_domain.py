"""The support ticket aggregate and the attachment rules, without a broker or a database:
given events, when a command, then events or an error (R-SUP-1…4)."""

import io
import zipfile

import pytest

from common.contracts import INTEGRATION_EVENTS
from common.errors import Conflict, ValidationFailed
from common.eventstore import RecordedEvent
from services.support import attachments as policy
from services.support.domain import Ticket

AT = "2026-11-30T10:00:00+00:00"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120)
CONTRACT = {e.type: set(e.fields) for e in INTEGRATION_EVENTS["support"]}


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("kern.log", "oops")
    return buffer.getvalue()


def recorded(events, start=0):
    return [RecordedEvent(position=start + n, stream_id="ticket-t1", version=start + n, type=e.type, data=e.data,
                          metadata={"event_id": f"e{start + n}"}, recorded_at=None)
            for n, e in enumerate(events, start=1)]


def a_file(name="a.png"):
    return {"id": f"att-{name}", "filename": name, "content_type": "image/png", "size": 10, "sha256": "0" * 64,
            "blob_key": "f" * 32}


def opened(server=None, files=()):
    return Ticket.open("t1", "ann", "Server down", "It does not boot.", server, "m1", list(files), AT)


def ticket_after(*commands):
    """A ticket opened by ann, then each command applied in turn."""
    history = opened()
    ticket = Ticket.replay("t1", recorded(history))
    for command in commands:
        events = command(ticket)
        history = history + events
        ticket = Ticket.replay("t1", recorded(history))
    return ticket


def staff_reply(ticket):
    return ticket.reply("m-staff", "staff", "Rebooted it.", [], AT, staff_name="Alice")


def customer_reply(ticket):
    return ticket.reply("m-cust", "customer", "Still down.", [], AT)


def close_by(by):
    return lambda ticket: ticket.close(by, AT)


def reopen_by(by):
    return lambda ticket: ticket.reopen(by, AT)


def public(events):
    return [e for e in events if e.type in CONTRACT]


def test_opening_records_the_request_and_publishes_ticket_opened_with_exactly_its_fields():
    events = opened(server={"id": "srv-1", "number": "SRV-10001"}, files=[a_file()])
    assert [e.type for e in events] == ["ticket_submitted", "message_posted", "ticket_opened"]
    assert events[2].data == {"ticket_id": "t1", "user_id": "ann", "subject": "Server down", "server_id": "srv-1",
                              "at": AT}
    assert events[1].data["body"] == "It does not boot." and events[1].data["attachments"][0]["filename"] == "a.png"
    ticket = Ticket.replay("t1", recorded(events))
    assert (ticket.status, ticket.user_id, ticket.server_id, ticket.messages) == ("open", "ann", "srv-1", ["m1"])


@pytest.mark.parametrize("subject, description, field", [
    ("", "text", "subject"), ("   ", "text", "subject"), ("x" * 201, "text", "subject"), ("two\nlines", "t", "subject"),
    ("Subject", "", "description"), ("Subject", None, "description"), ("Subject", "y" * 20001, "description"),
])
def test_a_request_without_subject_or_description_is_refused_naming_the_field(subject, description, field):
    with pytest.raises(ValidationFailed) as refused:
        Ticket.open("t1", "ann", subject, description, None, "m1", [], AT)
    assert field in refused.value.fields


def test_a_staff_reply_answers_the_request_and_says_who_replied():
    ticket = ticket_after()
    events = staff_reply(ticket)
    assert [e.type for e in events] == ["message_posted", "ticket_message_added", "ticket_status_changed"]
    assert events[1].data == {"ticket_id": "t1", "user_id": "ann", "subject": "Server down", "message_id": "m-staff",
                              "author": "staff", "staff_name": "Alice", "attachments": 0, "at": AT}
    assert events[2].data == {"ticket_id": "t1", "user_id": "ann", "subject": "Server down", "status": "answered",
                              "previous_status": "open", "by": "staff", "at": AT}


def test_every_public_event_carries_exactly_the_documented_fields():
    history = opened(files=[a_file()])
    for command in (staff_reply, customer_reply, close_by("customer"), reopen_by("staff"), close_by("staff"),
                    customer_reply):
        ticket = Ticket.replay("t1", recorded(history))
        history = history + command(ticket)
    for event in public(history):
        assert set(event.data) == CONTRACT[event.type], event.type


def test_a_customer_reply_to_an_answered_request_makes_it_open_again():
    ticket = ticket_after(staff_reply)
    events = customer_reply(ticket)
    assert events[-1].type == "ticket_status_changed"
    assert (events[-1].data["status"], events[-1].data["previous_status"], events[-1].data["by"]) == (
        "open", "answered", "customer")
    assert events[1].data["author"] == "customer" and events[1].data["staff_name"] is None


def test_a_customer_reply_to_a_closed_request_reopens_it():
    ticket = ticket_after(close_by("customer"))
    assert ticket.status == "closed"
    assert ticket_after(close_by("customer"), customer_reply).status == "reopened"


def test_a_customer_reply_to_an_open_request_keeps_its_status():
    events = customer_reply(ticket_after())
    assert [e.type for e in events] == ["message_posted", "ticket_message_added"]


@pytest.mark.parametrize("by", ["customer", "staff"])
def test_either_side_closes_and_reopens(by):
    closed = ticket_after(staff_reply, close_by(by))
    assert closed.status == "closed"
    events = reopen_by(by)(closed)
    assert [(e.data["status"], e.data["previous_status"], e.data["by"]) for e in events] == [("reopened", "closed", by)]
    assert ticket_after(staff_reply, close_by(by), reopen_by(by), staff_reply).status == "answered"


def test_closing_a_closed_request_changes_nothing():
    assert ticket_after(close_by("staff")).close("customer", AT) == []


@pytest.mark.parametrize("commands", [(), (staff_reply,)])
def test_only_a_closed_request_can_be_reopened(commands):
    with pytest.raises(Conflict) as refused:
        ticket_after(*commands).reopen("customer", AT)
    assert refused.value.code == "invalid_transition"


def test_staff_must_reopen_a_closed_request_before_replying():
    with pytest.raises(Conflict) as refused:
        staff_reply(ticket_after(close_by("customer")))
    assert refused.value.code == "ticket_closed"


@pytest.mark.parametrize("name", ["", None, "x" * 65])
def test_a_staff_reply_needs_a_staff_name(name):
    with pytest.raises(ValidationFailed) as refused:
        ticket_after().reply("m", "staff", "Hello", [], AT, staff_name=name)
    assert "staff_name" in refused.value.fields


def test_an_empty_reply_is_refused_naming_the_body():
    with pytest.raises(ValidationFailed) as refused:
        customer_reply_with_body(ticket_after(), "  ")
    assert "body" in refused.value.fields


def customer_reply_with_body(ticket, body):
    return ticket.reply("m", "customer", body, [], AT)


def test_a_reply_counts_its_attachments_in_the_public_event():
    events = ticket_after().reply("m", "customer", "Logs attached.", [a_file("a.png"), a_file("b.png")], AT)
    assert events[1].data["attachments"] == 2
    assert [a["filename"] for a in events[0].data["attachments"]] == ["a.png", "b.png"]


# -- attachment rules ----------------------------------------------------------------------

@pytest.mark.parametrize("declared, content, expected", [
    ("image/png", PNG, "image/png"),
    ("application/pdf", PDF, "application/pdf"),
    ("application/zip", zip_bytes(), "application/zip"),
    ("application/x-zip-compressed", zip_bytes(), "application/zip"),
    ("text/plain", b"kernel: panic\n", "text/plain"),
    ("text/plain; charset=utf-8", "Grüße\n".encode(), "text/plain"),
    ("text/csv", b"a,b\n1,2\n", "text/csv"),
    ("application/octet-stream", b"2026-11-30 boot failed\n", "text/plain"),
    ("", PNG, "image/png"),
])
def test_accepted_files_get_their_canonical_type(declared, content, expected):
    assert policy.classify("f", declared, content) == expected


@pytest.mark.parametrize("declared, content", [
    ("image/png", EXE),                    # an executable claiming to be an image
    ("image/png", PDF),                    # a real type, but not the declared one
    ("text/plain", PNG),                   # binary declared as text
    ("application/x-msdownload", EXE),     # not on the list at all
    ("text/html", b"<html><script>alert(1)</script>"),
    ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ("application/octet-stream", EXE),
    ("text/plain", b"\x00\x01binary\x00"),
])
def test_forbidden_or_mismatched_files_are_unsupported_media_types(declared, content):
    with pytest.raises(policy.UnsupportedMediaType) as refused:
        policy.classify("evil.bin", declared, content)
    assert refused.value.code == "unsupported_media_type" and "attachments" in refused.value.fields


def test_size_limits_are_ten_mib_per_file_and_twenty_five_per_message():
    policy.check_file_size("ok", 10 * 1024 * 1024)
    with pytest.raises(policy.PayloadTooLarge):
        policy.check_file_size("big", 10 * 1024 * 1024 + 1)
    policy.check_message_size(25 * 1024 * 1024)
    with pytest.raises(policy.PayloadTooLarge) as refused:
        policy.check_message_size(25 * 1024 * 1024 + 1)
    assert refused.value.code == "payload_too_large"


@pytest.mark.parametrize("given, safe", [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\report.pdf", "report.pdf"), ('a"b\r\n.txt', "a_b_.txt"),
    ("", "attachment"), ("..", "attachment"), ("grüße.log", "grüße.log"),
])
def test_file_names_lose_directories_and_unsafe_characters(given, safe):
    assert policy.safe_filename(given) == safe


def test_a_long_file_name_keeps_its_extension():
    name = policy.safe_filename("x" * 300 + ".png")
    assert len(name) == 200 and name.endswith(".png")
