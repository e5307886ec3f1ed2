"""Property tests: payment notifications delivered duplicated, reordered and concurrently;
the balance always equals the sum of the distinct successful payments (R-BILL-2, issue 6).

They drive the real billing use cases on a real event store (SQLite file) with a provider
fake that signs nothing: the signature checks have their own tests against the sandbox."""

import base64
import json
from decimal import Decimal

import eventlet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.clock import Clock
from common.db import create_engine
from common.operations import Operations
from services.billing.adapters import PaymentNotice
from services.billing.projections import schema
from services.billing.usecases import BillingUseCases


class FakeProvider:
    """Creates payments and accepts notifications that are plain JSON (no signature)."""

    name = "stripe"

    def create_payment(self, reference, amount, currency, return_url):
        return {"provider_payment_id": f"cs_{reference}", "redirect_url": f"https://pay.example/{reference}"}

    def parse_webhook(self, headers, raw_body, now):
        body = json.loads(raw_body)
        return PaymentNotice(provider="stripe", provider_payment_id=body["id"], status=body["status"],
                             amount=body["amount"], currency="EUR", reference=body.get("reference"))


def make_billing(tmp_path, name):
    engine = create_engine(f"sqlite:///{tmp_path / name}")
    schema.metadata.create_all(engine)
    store = schema.create_store(engine)
    operations = Operations(store, "billing", schema.operations_table)
    return BillingUseCases(store, operations, {"stripe": FakeProvider()}, Clock(), {})


def notice(payment_id, status, amount):
    body = json.dumps({"id": payment_id, "status": status, "amount": amount}).encode()
    return base64.b64encode(body).decode()


# A payment: its amount, and whether the provider says it succeeded (its last word).
payments = st.lists(st.tuples(st.sampled_from(["20.00", "25.50", "100.00", "33.33"]), st.booleans()),
                    min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=payments, data=st.data())
def test_balance_equals_the_distinct_successful_payments(tmp_path_factory, plan, data):
    billing = make_billing(tmp_path_factory.mktemp("billing"), "billing.db")
    deliveries = []
    expected = Decimal("0.00")
    for amount, succeeds in plan:
        topup = billing.create_topup("ann", amount, "stripe")
        pid = topup["provider_payment_id"]
        # Each payment is announced 1–3 times; a failed one may also fail first and then succeed.
        copies = data.draw(st.integers(min_value=1, max_value=3))
        if succeeds:
            expected += Decimal(amount)
            deliveries += [("succeeded", pid, amount)] * copies
            if data.draw(st.booleans()):
                deliveries.append(("failed", pid, amount))
        else:
            deliveries += [("failed", pid, amount)] * copies
    order = data.draw(st.permutations(deliveries))
    # Deliver in waves of concurrent requests, as retrying providers do.
    waves = data.draw(st.integers(min_value=1, max_value=len(order)))
    pool = eventlet.GreenPool(8)
    for start in range(0, len(order), waves):
        wave = order[start:start + waves]
        list(pool.imap(lambda d: billing.receive_webhook("stripe", {}, notice(d[1], d[0], d[2])), wave))

    assert Decimal(billing.account("ann")["balance"]) == expected
    statuses = {row["provider_payment_id"]: row["status"] for row in _topups(billing)}
    assert sum(status == "succeeded" for status in statuses.values()) == sum(s for _, s in plan)


def _topups(billing):
    import sqlalchemy as sa

    from services.billing.projections import topups

    with billing.store.engine.connect() as conn:
        return conn.execute(sa.select(topups)).mappings().all()


def test_a_crash_after_the_credit_commits_still_credits_once(tmp_path):
    """The service dies after committing the credit but before answering the webhook: the
    provider redelivers, and nothing more is credited."""
    billing = make_billing(tmp_path, "billing.db")
    topup = billing.create_topup("ann", "40.00", "stripe")
    original = billing.pay_open_invoices

    def crash_after_commit(user_id):
        raise SystemExit("the process died before answering")

    billing.pay_open_invoices = crash_after_commit
    try:
        billing.receive_webhook("stripe", {}, notice(topup["provider_payment_id"], "succeeded", "40.00"))
    except SystemExit:
        pass
    billing.pay_open_invoices = original
    assert billing.account("ann")["balance"] == "40.00"

    again = billing.receive_webhook("stripe", {}, notice(topup["provider_payment_id"], "succeeded", "40.00"))

    assert again == {"result": "duplicate"}
    assert billing.account("ann")["balance"] == "40.00"
    assert billing.get_topup("ann", topup["id"])["status"] == "succeeded"
