"""Billing finishes what a failure left half done, and credits only notices that match
their top-up (audit findings: steps after a commit never resumed; settlement ignoring
currency, reference and provider).

The real billing, inventory and gateway services on a real broker and SQLite files; the
payments sandbox sends its signed notifications to the gateway. A fault is injected by
making a domain call raise once, as a crash right after the previous commit would. The
last test drives two billing replicas' use cases on one database (SQLite and PostgreSQL),
as test_billing_properties does."""

import hashlib
import hmac
import json
import time
import uuid
from types import SimpleNamespace

import eventlet
import pytest
import requests
import sqlalchemy as sa
from kombu import Connection, Queue, binding
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from common import topology
from common.clock import Clock
from common.db import create_engine
from common.messaging import event_exchange
from common.operations import Operations
from common.service import OutboxRelayProvider, find_provider
from deploy.components import migrate
from gateway.service import GatewayService
from services.billing import domain
from services.billing.projections import invoices, schema, subscriptions
from services.billing.service import BillingService
from services.billing.usecases import BillingUseCases
from services.inventory.service import InventoryService
from tests.integration.test_billing import _days_until
from tests.integration.test_billing_properties import FakeProvider
from tests.payments import CREDENTIALS, running_payments_sandbox
from tests.support import free_port, store_of, wait_for


class FailsOnce:
    """``Account.charge`` raises on its next call, then works again: the step after a
    commit (paying an invoice, or marking it overdue) dies as in a crash."""

    def __init__(self, monkeypatch):
        original = domain.Account.charge
        self.fired = 0

        def charge(account, *args, **kwargs):
            if not self.fired:
                self.fired += 1
                raise RuntimeError("injected fault after the commit")
            return original(account, *args, **kwargs)

        monkeypatch.setattr(domain.Account, "charge", charge)


class PublishedEvents:
    """A queue bound to billing's event exchange: what the outbox relay really published."""

    def __init__(self, amqp_uri, types):
        self.amqp_uri = amqp_uri
        self.queue = Queue(f"spy-{uuid.uuid4().hex[:8]}", durable=False,
                           bindings=[binding(event_exchange("billing"), routing_key=t) for t in types])
        with Connection(amqp_uri) as connection:
            self.queue(connection.channel()).declare()
        self.bodies = []

    def of_type(self, relay, event_type):
        """Every ``event_type`` published so far (once the relay has nothing left to publish)."""
        wait_for(lambda: relay.backlog() == 0, message="the outbox relayed every event")
        with Connection(self.amqp_uri) as connection:
            queue = self.queue(connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                self.bodies.append(json.loads(message.body))
        return [body for body in self.bodies if body["type"] == event_type]


class Panel:
    def __init__(self, amqp_uri, api, sandbox, billing, published):
        self.amqp_uri = amqp_uri
        self.api = api
        self.sandbox = sandbox
        self.billing = billing
        self.published_events = published
        self.servers = 0

    def rpc(self, user_id="ann"):
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, context_data={"user_id": user_id})

    def provision(self):
        """A server of ann's, paid until 2030-01-31, that billing renews."""
        self.servers += 1
        with self.rpc() as cluster:
            cluster.inventory.provision_server(
                "ann", "NL", "Dedicated AX41", {"cpu": "x"}, [f"192.0.2.{60 + self.servers}"], "ubuntu-24.04",
                {"endpoint": "http://127.0.0.1:1", "system_id": "x"}, "2030-01-31", "49.00", None)
        wait_for(lambda: self._count(subscriptions) == self.servers, timeout=20, message="billing renews the server")

    def _count(self, table):
        with store_of(self.billing).engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def advance_clock_past_the_paid_period(self):
        with self.rpc() as cluster:
            cluster.billing.advance_clock(_days_until("2030-02-01"))

    def tick(self):
        """What the billing timer runs every minute."""
        with entrypoint_hook(self.billing, "renewal_timer") as renewal_timer:
            renewal_timer()

    def create_topup(self, amount, method):
        with self.rpc() as cluster:
            return cluster.billing.create_topup(amount, method)

    def topup(self, topup_id):
        with self.rpc() as cluster:
            return cluster.billing.get_topup(topup_id)

    def account(self):
        with self.rpc() as cluster:
            return cluster.billing.get_account()

    def invoices(self):
        with self.rpc() as cluster:
            return sorted(cluster.billing.list_invoices()["items"], key=lambda invoice: invoice["number"])

    def published(self, event_type):
        return self.published_events.of_type(find_provider(self.billing, OutboxRelayProvider).relay, event_type)

    def bank_notice(self, transfer_id, external_id, amount, currency):
        """A transfer notice signed with the bank's webhook secret, as the bank sends it."""
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "transfer.received",
                           "created_at": "2030-01-01T00:00:00Z",
                           "data": {"transfer_id": transfer_id, "reference": "HP-TESTTESTTE",
                                    "external_id": external_id, "amount": amount, "currency": currency}}).encode()
        timestamp = str(int(time.time()))
        signature = hmac.new(CREDENTIALS["BANK_WEBHOOK_SECRET"].encode(), f"{timestamp}.".encode() + body,
                             hashlib.sha256).hexdigest()
        return requests.post(f"{self.api}/billing/webhooks/bank_wire", data=body, timeout=15, headers={
            "Content-Type": "application/json", "X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature})


@pytest.fixture
def panel(start_service, amqp_uri, tmp_path):
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("billing", "inventory", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    gateway_port = free_port()
    api = f"http://127.0.0.1:{gateway_port}/api/v1"
    gateway_webhooks = SimpleNamespace(url=f"{api}/billing/webhooks")
    with running_payments_sandbox(tmp_path / "payments", gateway_webhooks) as sandbox:
        topology.declare(amqp_uri, [BillingService, InventoryService])
        published = PublishedEvents(amqp_uri, ("invoice_overdue", "invoice_paid"))
        billing = start_service(BillingService, DATABASE_URL=urls["billing"], METRICS_PORT="off",
                                CLOCK_ADJUSTABLE=True, OUTBOX_POLL_SECONDS=0.2, **sandbox.config)
        start_service(InventoryService, DATABASE_URL=urls["inventory"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2)
        start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{gateway_port}", DATABASE_URL=urls["gateway"],
                      METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
        yield Panel(amqp_uri, api, sandbox, billing, published)


def test_a_renewal_whose_payment_step_failed_is_resumed_by_the_next_run_and_the_other_jobs_still_run(
        panel, monkeypatch):
    panel.provision()
    panel.provision()
    never_paid = panel.create_topup("25.00", "paypal")
    panel.advance_clock_past_the_paid_period()
    fault = FailsOnce(monkeypatch)

    panel.tick()  # issues both renewals; the step after the first one's commit fails

    assert fault.fired == 1
    assert sorted(invoice["status"] for invoice in panel.invoices()) == ["open", "overdue"]
    assert panel.topup(never_paid["id"])["status"] == "failed"  # expiring top-ups ran all the same

    panel.tick()  # a minute later: the invoice left open is resumed

    unpaid = panel.invoices()
    assert [invoice["status"] for invoice in unpaid] == ["overdue", "overdue"]
    assert panel.account()["amount_due"] == "98.00"
    overdue = panel.published("invoice_overdue")
    assert sorted(event["data"]["invoice_id"] for event in overdue) == sorted(invoice["id"] for invoice in unpaid)


def test_a_credit_whose_invoice_payment_failed_pays_the_overdue_invoice_on_the_next_run(panel, monkeypatch):
    panel.provision()
    panel.advance_clock_past_the_paid_period()
    panel.tick()
    [invoice] = panel.invoices()
    assert invoice["status"] == "overdue"
    fault = FailsOnce(monkeypatch)

    topup = panel.create_topup("60.00", "stripe")
    delivery = panel.sandbox.complete(topup["provider_payment_id"])["delivery"]

    # The credit committed: the notice is answered at once, whatever failed after it.
    record = panel.sandbox.delivery(delivery, state="delivered", timeout=30)
    assert [attempt["status"] for attempt in record["attempts"]] == [200]
    assert fault.fired == 1 and panel.account()["balance"] == "60.00"

    panel.tick()

    [invoice] = panel.invoices()
    assert invoice["status"] == "paid"
    assert panel.account() == {"balance": "11.00", "currency": "EUR", "overdue": False, "unpaid_invoices": 0,
                               "amount_due": "0.00"}
    assert [event["data"]["invoice_id"] for event in panel.published("invoice_paid")] == [invoice["id"]]


def test_notices_in_another_currency_for_another_reference_or_from_another_provider_credit_nothing(panel):
    wire = panel.create_topup("1000.00", "bank_wire")
    card = panel.create_topup("50.00", "stripe")

    answers = [
        panel.bank_notice(wire["provider_payment_id"], wire["id"], "1000.00", "USD"),
        panel.bank_notice(wire["provider_payment_id"], "another-top-up", "1000.00", "EUR"),
        panel.bank_notice(card["provider_payment_id"], card["id"], "50.00", "EUR"),
        panel.bank_notice(wire["provider_payment_id"], wire["id"], "1000.00", "USD"),  # the bank sends it again
    ]

    # Answered (the provider stops resending what can never be credited), refused, recorded once each.
    assert [answer.status_code for answer in answers] == [200] * 4, answers[0].text
    assert [answer.json() for answer in answers] == [
        {"result": "refused", "reasons": ["currency"]}, {"result": "refused", "reasons": ["reference"]},
        {"result": "refused", "reasons": ["provider"]}, {"result": "refused", "reasons": ["currency"]}]
    assert panel.account()["balance"] == "0.00"
    assert [panel.topup(t["id"])["status"] for t in (wire, card)] == ["pending", "pending"]
    mismatches = [e for e in store_of(panel.billing).read_after(0, limit=None) if e.type == "payment_mismatch"]
    assert [(e.stream_id, e.data["reasons"], e.data["notice"]["currency"]) for e in mismatches] == [
        (f"topup-{wire['id']}", ["currency"], "USD"), (f"topup-{wire['id']}", ["reference"], "EUR"),
        (f"topup-{card['id']}", ["provider"], "EUR")]

    panel.sandbox.incoming_transfer(wire["instructions"]["reference"], "1000.00")  # the real transfer, in euros

    wait_for(lambda: panel.account()["balance"] == "1000.00", timeout=20, message="the genuine transfer credited")


class CrashesAfterIssuing(BillingUseCases):
    """A replica that dies after each renewal invoice commits, before paying it."""

    def _pay_or_overdue(self, invoice_id, *args):
        raise RuntimeError("the replica died after the commit")


def replica(url, cls=BillingUseCases):
    engine = create_engine(url)
    schema.metadata.create_all(engine)
    store = schema.create_store(engine)
    return cls(store, Operations(store, "billing", schema.operations_table), {"stripe": FakeProvider()}, Clock(), {})


def test_two_replicas_resuming_the_same_invoices_settle_each_exactly_once(database_url):
    crashing = replica(database_url, CrashesAfterIssuing)
    today = crashing.clock.now().date().isoformat()
    for n in range(3):
        crashing.subscribe("test", {"event_id": f"e{n}", "data": {
            "server_id": f"s{n}", "user_id": "ann", "number": f"SRV-{n}", "price_month": "10.00",
            "paid_until": today}})
    crashing.store.append("account-ann", 0, domain.Account("ann").credit("15.00", "topup", "t1"))
    assert crashing.run_billing() == 3  # each left open; one failure does not stop the others
    replicas = [replica(database_url) for _ in range(2)]

    list(eventlet.GreenPool(2).imap(lambda billing: billing.run_billing(), replicas))

    with crashing.store.engine.connect() as conn:
        statuses = [row.status for row in conn.execute(sa.select(invoices.c.status).order_by(invoices.c.number))]
    assert statuses == ["paid", "overdue", "overdue"]
    events = crashing.store.read_after(0, limit=None)
    settled = [e.stream_id for e in events if e.type in ("invoice_paid", "invoice_overdue")]
    assert sorted(settled) == sorted({e.stream_id for e in events if e.type == "invoice_issued"})
    assert [e.data["amount"] for e in events if e.type == "account_debited"] == ["10.00"]
    assert crashing.account("ann")["balance"] == "5.00"
