"""Which verified payment notices may settle a top-up (billing domain, no I/O): a notice in
another currency, naming another reference or coming from another provider than the
top-up's method credits nothing and is recorded once as ``payment_mismatch``."""

import pytest

from services.billing import domain
from services.billing.domain import TopUp
from tests.unit.test_billing_domain import recorded


def requested_topup():
    return TopUp.request("t1", "u1", "25", "bank_wire", {"provider_payment_id": "bw_1"}, "billing-op", None)


def notice(**changes):
    return {"provider": "bank_wire", "provider_payment_id": "bw_1", "status": "succeeded", "amount": "25.00",
            "currency": "EUR", "reference": "t1", **changes}


def test_a_notice_that_matches_the_top_up_may_settle_it():
    topup = TopUp.replay("t1", recorded("topup-t1", requested_topup()))
    assert topup.mismatches("bank_wire", "EUR", "t1") == []


def test_a_notice_without_a_reference_may_settle_it():
    topup = TopUp.replay("t1", recorded("topup-t1", requested_topup()))
    assert topup.mismatches("bank_wire", "EUR", None) == []


@pytest.mark.parametrize("provider, currency, reference, reasons", [
    ("bank_wire", "USD", "t1", ["currency"]),
    ("bank_wire", "EUR", "t2", ["reference"]),
    ("stripe", "EUR", "t1", ["provider"]),
    ("stripe", "GBP", "other", ["provider", "currency", "reference"]),
])
def test_a_notice_in_another_currency_for_another_reference_or_from_another_provider_is_refused(
        provider, currency, reference, reasons):
    topup = TopUp.replay("t1", recorded("topup-t1", requested_topup()))
    assert topup.mismatches(provider, currency, reference) == reasons


def test_the_currency_is_the_one_the_top_up_was_asked_in():
    assert TopUp.request("t1", "u1", "25", "stripe", {"provider_payment_id": "cs_1"}, "op", None)[0].data[
        "currency"] == domain.CURRENCY
    older = requested_topup()
    del older[0].data["currency"]  # recorded before top-ups carried their currency
    topup = TopUp.replay("t1", recorded("topup-t1", older))
    assert topup.mismatches("bank_wire", domain.CURRENCY, "t1") == []
    assert topup.mismatches("bank_wire", "USD", "t1") == ["currency"]


def test_a_refused_notice_is_recorded_once_and_leaves_the_top_up_pending():
    history = requested_topup()
    topup = TopUp.replay("t1", recorded("topup-t1", history))
    wire_in_dollars = notice(currency="USD", amount="1000.00")
    [event] = topup.refuse(["currency"], wire_in_dollars)
    assert event.type == "payment_mismatch"
    assert event.data["reasons"] == ["currency"] and event.data["notice"] == wire_in_dollars
    assert event.data["expected"] == {"method": "bank_wire", "currency": "EUR", "reference": "t1"}
    history += [event]
    topup = TopUp.replay("t1", recorded("topup-t1", history))
    assert topup.status == "pending"
    assert topup.refuse(["currency"], wire_in_dollars) == []  # a redelivery adds nothing
    assert len(topup.refuse(["reference"], notice(reference="t9"))) == 1  # another notice is recorded
    assert topup.settle(True, "25.00")[0].type == "topup_succeeded"  # the right payment still settles it
