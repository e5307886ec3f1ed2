"""The billing domain without I/O: ledger, top-ups, renewals."""

from datetime import date
from decimal import Decimal

import pytest

from common.errors import Conflict, ValidationFailed
from common.eventstore import RecordedEvent
from services.billing import domain
from services.billing.domain import Account, Invoice, Subscription, TopUp

METHODS = {"stripe": {}, "paypal": {}}


def recorded(stream_id, events):
    return [RecordedEvent(position=i, stream_id=stream_id, version=i, type=e.type, data=e.data,
                          metadata={"event_id": str(i)}, recorded_at=None) for i, e in enumerate(events, start=1)]


def test_top_up_amounts_start_at_twenty_and_name_the_field():
    assert domain.check_topup("20", "stripe", METHODS, Decimal("10000")) == Decimal("20.00")
    for amount in ("19.99", "abc", "NaN", "100000"):
        with pytest.raises(ValidationFailed) as raised:
            domain.check_topup(amount, "stripe", METHODS, Decimal("10000"))
        assert "amount" in raised.value.fields
    with pytest.raises(ValidationFailed) as raised:
        domain.check_topup("25", "cheque", METHODS, Decimal("10000"))
    assert "method" in raised.value.fields


def test_a_charge_is_taken_once_per_reference_and_never_below_zero():
    history = Account("u1").credit("50", "topup", "t1")
    account = Account.replay("u1", recorded("account-u1", history))
    history += account.charge("30", "order", "order-1")
    account = Account.replay("u1", recorded("account-u1", history))
    assert account.balance == Decimal("20.00")
    assert account.charge("30", "order", "order-1") == []
    with pytest.raises(Conflict) as raised:
        account.charge("20.01", "order", "order-2")
    assert raised.value.code == "insufficient_funds"


def test_a_top_up_is_credited_once_whatever_the_order_of_notices():
    requested = TopUp.request("t1", "u1", "25", "stripe", {"provider_payment_id": "cs_1"}, "billing-op", None)
    for notices in ([True, True], [False, True, True], [True, False, True]):
        history = list(requested)
        credits = 0
        for succeeded in notices:
            events = TopUp.replay("t1", recorded("topup-t1", history)).settle(succeeded, "25.00")
            credits += sum(e.type == "topup_succeeded" for e in events)
            history += events
        assert credits == 1
        assert TopUp.replay("t1", recorded("topup-t1", history)).status == "succeeded"


def test_renewals_are_due_when_the_paid_period_ends_and_run_a_month():
    history = Subscription.subscribe({"server_id": "s1", "user_id": "u1", "number": "SRV-1", "price_month": "49",
                                      "paid_until": "2027-01-31"})
    subscription = Subscription.replay("s1", recorded("subscription-s1", history))
    assert not subscription.due(date(2027, 1, 30))
    assert subscription.due(date(2027, 1, 31))
    period = subscription.invoice("i1")[0].data
    assert (period["period_start"], period["period_end"]) == ("2027-01-31", "2027-02-28")
    history += subscription.invoice("i1")
    assert not Subscription.replay("s1", recorded("subscription-s1", history)).due(date(2027, 3, 1))


def test_an_unpaid_invoice_goes_overdue_once_and_can_still_be_paid():
    subscription = Subscription.replay("s1", recorded("subscription-s1", Subscription.subscribe(
        {"server_id": "s1", "user_id": "u1", "number": "SRV-1", "price_month": "49", "paid_until": "2027-01-31"})))
    history = Invoice.issue("i1", "INV-100001", subscription, subscription.invoice("i1")[0].data, date(2027, 1, 31))
    history += Invoice.replay("i1", recorded("invoice-i1", history)).mark_overdue()
    invoice = Invoice.replay("i1", recorded("invoice-i1", history))
    assert invoice.status == "overdue" and invoice.mark_overdue() == []
    history += invoice.pay(date(2027, 2, 3))
    assert Invoice.replay("i1", recorded("invoice-i1", history)).status == "paid"


def test_a_pending_top_up_is_looked_up_after_the_delay_then_at_each_doubling_of_it():
    from datetime import timedelta

    from services.billing.domain import reconciliation_due

    first, every = timedelta(minutes=5), timedelta(minutes=1)
    runs = [timedelta(minutes=m, seconds=30) for m in range(0, 24 * 60)]  # a run a minute for a day
    asked = [run for run in runs if reconciliation_due(run, first, every)]
    assert [run.total_seconds() // 60 for run in asked] == [5, 10, 20, 40, 80, 160, 320, 640, 1280]
    assert not reconciliation_due(timedelta(minutes=4, seconds=59), first, every)
