"""The server aggregate's rules for billing's invoice facts (R-SRV-3), without I/O: stale,
repeated and out-of-order facts change nothing, and ``paid_until`` never moves back."""

from itertools import permutations

import pytest

from common.eventstore import NewEvent, RecordedEvent
from services.inventory.domain import Server


def recorded(events):
    return [RecordedEvent(position=i, stream_id="server-s1", version=i, type=e.type, data=e.data,
                          metadata={"event_id": str(i)}, recorded_at=None)
            for i, e in enumerate(events, start=1)]


def provisioned():
    return Server.provision("s1", user_id="ann", number="SRV-10001", location="NL", plan="AX41", hardware={},
                            ips=["192.0.2.1"], os="ubuntu-24.04", bmc={"endpoint": "http://bmc", "system_id": "x"},
                            paid_until="2026-12-31", price_month="49.00")


def server_after(events):
    return Server.replay("s1", recorded(events))


def overdue(invoice_id):
    return lambda server: server.mark_overdue("invoice unpaid", invoice_id=invoice_id)


def paid(invoice_id, paid_until):
    return lambda server: server.mark_paid(paid_until, invoice_id=invoice_id)


def applied(*facts):
    """The history after applying each fact (a command on the server as it then is)."""
    history = provisioned()
    for fact in facts:
        history += fact(server_after(history))
    return history


def test_an_overdue_invoice_marks_the_server_and_its_payment_clears_it():
    history = applied(overdue("inv-1"))
    assert server_after(history).status == "overdue"
    history += paid("inv-1", "2027-01-31")(server_after(history))
    server = server_after(history)
    assert (server.status, server.paid_until) == ("active", "2027-01-31")


def test_an_overdue_arriving_after_its_invoice_was_paid_changes_nothing():
    server = server_after(applied(paid("inv-1", "2027-01-31")))
    assert server.mark_overdue("invoice unpaid", invoice_id="inv-1") == []
    assert server.status == "active"


def test_the_same_payment_twice_records_nothing_the_second_time():
    server = server_after(applied(paid("inv-1", "2027-01-31")))
    assert server.mark_paid("2027-01-31", invoice_id="inv-1") == []


def test_the_same_overdue_twice_records_nothing_the_second_time():
    assert server_after(applied(overdue("inv-1"))).mark_overdue("invoice unpaid", invoice_id="inv-1") == []


def test_an_older_payment_after_a_newer_one_keeps_paid_until():
    history = applied(paid("inv-2", "2027-02-28"), paid("inv-1", "2027-01-31"))
    server = server_after(history)
    assert (server.status, server.paid_until) == ("active", "2027-02-28")
    assert server.mark_overdue("invoice unpaid", invoice_id="inv-1") == []  # remembered as paid


def test_a_later_invoices_overdue_still_marks_the_server():
    history = applied(overdue("inv-1"), paid("inv-1", "2027-01-31"), overdue("inv-2"))
    assert server_after(history).status == "overdue"


def test_paying_one_invoice_keeps_the_server_overdue_while_another_is_unpaid():
    history = applied(overdue("inv-1"), overdue("inv-2"), paid("inv-1", "2027-01-31"))
    server = server_after(history)
    assert (server.status, server.paid_until) == ("overdue", "2027-01-31")


FACTS = {
    "overdue 1": overdue("inv-1"), "paid 1": paid("inv-1", "2027-01-31"),
    "overdue 2": overdue("inv-2"), "paid 2": paid("inv-2", "2027-02-28"),
}


@pytest.mark.parametrize("order", list(permutations(FACTS)), ids=" / ".join)
def test_two_renewals_in_any_order_end_paid_until_the_later_period(order):
    server = server_after(applied(*(FACTS[name] for name in order)))
    assert (server.status, server.paid_until, server.overdue_invoices) == ("active", "2027-02-28", set())


@pytest.mark.parametrize("order", list(permutations(["overdue 1", "paid 1", "overdue 2"])), ids=" / ".join)
def test_an_unpaid_later_invoice_ends_overdue_in_any_order(order):
    server = server_after(applied(*(FACTS[name] for name in order)))
    assert (server.status, server.paid_until, server.overdue_invoices) == ("overdue", "2027-01-31", {"inv-2"})


def test_a_verdict_without_an_invoice_settles_every_overdue_invoice_and_keeps_paid_until():
    history = applied(paid("inv-1", "2027-01-31"), overdue("inv-2"))
    history += server_after(history).mark_paid("2026-06-30")
    server = server_after(history)
    assert (server.status, server.paid_until) == ("active", "2027-01-31")
    assert server.mark_paid(None) == []  # nothing left to change


def test_events_recorded_before_invoice_ids_still_fold():
    history = provisioned() + [NewEvent("server_marked_overdue", {"reason": "invoice unpaid"})]
    assert server_after(history).mark_overdue("invoice unpaid") == []
    history += [NewEvent("server_paid", {"paid_until": "2027-01-31"})]
    server = server_after(history)
    assert (server.status, server.paid_until, server.overdue_invoices) == ("active", "2027-01-31", set())



def test_an_overdue_without_an_invoice_is_settled_by_the_next_invoice_payment():
    """Servers marked overdue before invoice ids were recorded (or by an operator's verdict)
    must not stay overdue once their invoice is paid."""
    legacy = provisioned() + [NewEvent("server_marked_overdue", {"reason": "invoice unpaid"})]
    history = legacy + paid("inv-1", "2027-01-31")(server_after(legacy))
    assert server_after(history).status == "active"
    verdict = applied(lambda server: server.mark_overdue("operator"), paid("inv-1", "2027-01-31"))
    assert server_after(verdict).status == "active"
