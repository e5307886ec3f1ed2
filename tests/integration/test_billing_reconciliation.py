"""A top-up whose provider webhook never arrives is still credited, exactly once (issue 20).

The provider (the payments sandbox, every one of the six) sends its signed notification to
a receiver that answers 503, as a gateway or billing that was down would: the provider
gives up. Billing then looks the payment up at the provider's API (``reconcile_topups``,
which the timer runs) and settles it through the same path as a webhook, so whichever of
the two comes first credits and the other changes nothing — the notification the provider
did send, replayed to the real gateway afterwards, credits nothing more.

Real billing and gateway services on a real broker and SQLite files; the providers are
reached over HTTP through the real adapters.
"""

from decimal import Decimal

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from common import topology
from common.db import create_engine
from deploy.components import migrate
from gateway.service import GatewayService
from services.billing.service import BillingService
from tests.payments import WebhookReceiver, running_payments_sandbox
from tests.support import free_port, wait_for

CARD_AND_CRYPTO = ("stripe", "paypal", "bitpay", "coinbase", "revolut")


class Cashier:
    """The customer's billing (RPC as ann), the sandbox, and the notifications it sent."""

    def __init__(self, amqp_uri, api, sandbox, receiver):
        self.amqp_uri = amqp_uri
        self.api = api
        self.sandbox = sandbox
        self.receiver = receiver

    def billing(self, method, *args):
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, context_data={"user_id": "ann"}, timeout=30) as cluster:
            return getattr(cluster.billing, method)(*args)

    def pay(self, topup):
        """The customer pays at the provider; its notification reaches only the receiver."""
        if topup["method"] == "bank_wire":
            self.sandbox.incoming_transfer(topup["instructions"]["reference"], topup["amount"])
        else:
            self.sandbox.complete(topup["provider_payment_id"])
        return self.receiver.wait(topup["method"], topup["provider_payment_id"], timeout=20)[-1]

    def replay(self, notification):
        """The provider's notification, byte for byte, to the real gateway."""
        return requests.post(f"{self.api}/billing/webhooks/{notification.provider}", data=notification.body,
                             timeout=30, headers={k: v for k, v in notification.headers.items()
                                                  if k.lower() not in ("host", "content-length")})

    def credits(self, topup_id):
        items = self.billing("list_transactions", 1, 500)["items"]
        return [item for item in items if item["direction"] == "credit" and item["reference"] == topup_id]


@pytest.fixture
def cashier(start_service, amqp_uri, tmp_path):
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("billing", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    receiver = WebhookReceiver().start()
    receiver.fail_next(count=10_000, status=503)  # billing "down" whenever the provider calls
    gateway_port = free_port()
    try:
        with running_payments_sandbox(tmp_path / "payments", receiver) as sandbox:
            topology.declare(amqp_uri, [BillingService])
            start_service(BillingService, DATABASE_URL=urls["billing"], METRICS_PORT="off", CLOCK_ADJUSTABLE=True,
                          OUTBOX_POLL_SECONDS=0.2, TOPUP_RECONCILE_AFTER_SECONDS=0, **sandbox.config)
            start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{gateway_port}", DATABASE_URL=urls["gateway"],
                          METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
            yield Cashier(amqp_uri, f"http://127.0.0.1:{gateway_port}/api/v1", sandbox, receiver)
    finally:
        receiver.stop()


@pytest.mark.parametrize("method", [*CARD_AND_CRYPTO, "bank_wire"])
def test_a_payment_whose_webhook_never_arrived_is_credited_once_by_asking_the_provider(cashier, method):
    topup = cashier.billing("create_topup", "37.50", method)
    notification = cashier.pay(topup)
    assert cashier.billing("get_topup", topup["id"])["status"] == "pending"  # the webhook was lost

    assert cashier.billing("reconcile_topups") == 1
    assert cashier.billing("get_topup", topup["id"])["status"] == "succeeded"
    assert cashier.billing("get_account")["balance"] == "37.50"
    assert cashier.billing("get_operation", topup["operation_id"])["status"] == "succeeded"

    late = cashier.replay(notification)  # the provider's notification arrives after all
    assert late.status_code == 200, late.text
    assert cashier.billing("reconcile_topups") == 0
    assert cashier.billing("get_account")["balance"] == "37.50"
    assert [credit["amount"] for credit in cashier.credits(topup["id"])] == ["37.50"]


def test_when_the_webhook_comes_first_reconciling_credits_nothing_more(cashier):
    topup = cashier.billing("create_topup", "25.00", "stripe")
    assert cashier.replay(cashier.pay(topup)).status_code == 200
    assert cashier.billing("get_account")["balance"] == "25.00"
    assert cashier.billing("reconcile_topups") == 0
    assert [credit["amount"] for credit in cashier.credits(topup["id"])] == ["25.00"]


def test_an_unpaid_checkout_stays_pending_and_a_provider_down_is_asked_again_later(cashier):
    unpaid = cashier.billing("create_topup", "20.00", "coinbase")
    assert cashier.billing("reconcile_topups") == 0
    assert cashier.billing("get_topup", unpaid["id"])["status"] == "pending"

    paid = cashier.billing("create_topup", "30.00", "paypal")
    cashier.pay(paid)
    cashier.sandbox.control("paypal", "fail")  # its API answers 503 now
    try:
        assert cashier.billing("reconcile_topups") == 0
        assert cashier.billing("get_topup", paid["id"])["status"] == "pending"
    finally:
        cashier.sandbox.control("paypal", "ok")
    assert cashier.billing("reconcile_topups") == 1
    assert cashier.billing("get_account")["balance"] == "30.00"


def test_a_top_up_paid_but_never_notified_is_credited_instead_of_expiring(cashier):
    topup = cashier.billing("create_topup", "50.00", "revolut")
    cashier.pay(topup)
    with ClusterRpcProxy({"AMQP_URI": cashier.amqp_uri}, timeout=30) as cluster:
        cluster.billing.advance_clock(2 * 86400)  # past TOPUP_EXPIRY_HOURS
    assert cashier.billing("expire_topups") == 0
    assert cashier.billing("get_topup", topup["id"])["status"] == "succeeded"
    assert Decimal(cashier.billing("get_account")["balance"]) == Decimal("50.00")
    unpaid = cashier.billing("create_topup", "20.00", "stripe")
    with ClusterRpcProxy({"AMQP_URI": cashier.amqp_uri}, timeout=30) as cluster:
        cluster.billing.advance_clock(2 * 86400)
    assert cashier.billing("expire_topups") == 1
    assert wait_for(lambda: cashier.billing("get_topup", unpaid["id"])["status"] == "failed", message="expired")


def test_the_statement_pages_back_by_cursor_as_it_does_by_page(cashier):
    for amount in ("20.00", "21.00", "22.00"):
        cashier.pay(cashier.billing("create_topup", amount, "stripe"))
    assert cashier.billing("reconcile_topups") == 3
    first = cashier.billing("list_transactions", 1, 2)
    older = cashier.billing("list_transactions", 1, 2, first["next_cursor"])
    by_page = cashier.billing("list_transactions", 1, 2)["items"] + cashier.billing("list_transactions", 2, 2)["items"]
    assert [t["amount"] for t in first["items"] + older["items"]] == [t["amount"] for t in by_page]
    assert sorted(t["amount"] for t in by_page) == ["20.00", "21.00", "22.00"] and older["next_cursor"] is None
