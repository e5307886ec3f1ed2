"""Billing through the gateway (R-BILL-1…3, R-SRV-3): the real billing and inventory services
and gateway on a real broker, and the payments sandbox as a separate process that creates
payments in each provider's API shape and sends their signed notifications to the gateway."""

import json
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from common.db import create_engine
from deploy.components import migrate
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from services.billing.service import BillingService
from services.inventory.service import InventoryService
from tests.support import ChildProcess, free_port, http_ok, store_of, wait_for

METHODS = ("paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut")


class Billing:
    def __init__(self, amqp_uri, api, sandbox, sessions):
        self.amqp_uri = amqp_uri
        self.api = api
        self.sandbox = sandbox
        self.sessions = sessions
        self.tokens = {}

    def login(self, user_id):
        self.tokens[user_id], _ = self.sessions.create(f"session-{user_id}-{uuid.uuid4().hex[:6]}", user_id)

    def headers(self, user_id, **extra):
        return {"Authorization": f"Bearer {self.tokens[user_id]}", **extra}

    def get(self, path, user_id="ann", **kwargs):
        return requests.get(f"{self.api}{path}", headers=self.headers(user_id), timeout=15, **kwargs)

    def topup(self, amount, method, user_id="ann", key=None):
        extra = {"Idempotency-Key": key} if key else {}
        return requests.post(f"{self.api}/billing/topups", json={"amount": amount, "method": method},
                             headers=self.headers(user_id, **extra), timeout=15)

    def pay(self, topup, outcome="succeeded"):
        """The customer pays at the provider (or the bank transfer arrives)."""
        if topup["method"] == "bank_wire":
            instructions = topup["instructions"]
            answer = requests.post(f"{self.sandbox}/bank/incoming-transfers", timeout=10, json={
                "reference": instructions["reference"], "amount": instructions["amount"], "currency": "EUR"})
        else:
            answer = requests.post(f"{self.sandbox}/payments/{topup['provider_payment_id']}/complete",
                                   json={"outcome": outcome}, timeout=10)
        assert answer.status_code in (200, 202), answer.text

    def balance(self, user_id="ann"):
        return self.get("/billing/account", user_id).json()["balance"]

    def rpc(self, user_id=None):
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, context_data={"user_id": user_id} if user_id else None)


@pytest.fixture
def billing(start_service, amqp_uri, tmp_path):
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("billing", "inventory", "gateway")}
    for name, url in urls.items():
        migrate(name, create_engine(url))
    gateway_port, sandbox_port = free_port(), free_port()
    api = f"http://127.0.0.1:{gateway_port}/api/v1"
    sandbox = ChildProcess("payments sandbox", [sys.executable, "-m", "deploy.standins.payments", "--port",
                                                str(sandbox_port), "--webhook-base", f"{api}/billing/webhooks"],
                           Path(tmp_path) / "payments.log")
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    from common import topology

    topology.declare(amqp_uri, [BillingService, InventoryService])
    service = start_service(BillingService, DATABASE_URL=urls["billing"], METRICS_PORT="off", CLOCK_ADJUSTABLE=True,
                            PAYMENTS_BASE_URL=sandbox_url, DEV_CREDENTIALS=True, OUTBOX_POLL_SECONDS=0.2)
    start_service(InventoryService, DATABASE_URL=urls["inventory"], METRICS_PORT="off", OUTBOX_POLL_SECONDS=0.2)
    start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{gateway_port}", DATABASE_URL=urls["gateway"],
                  METRICS_PORT="off", SESSION_COOKIE_SECURE=False)
    wait_for(lambda: sandbox.check_alive() or http_ok(f"{sandbox_url}/payments"), message="payments sandbox")
    billing = Billing(amqp_uri, api, sandbox_url, SessionStore(create_engine(urls["gateway"])))
    billing.service = service
    billing.login("ann")
    billing.login("bob")
    yield billing
    sandbox.terminate()
    sandbox.stop()


def test_the_six_payment_methods_are_listed_with_what_they_accept(billing):
    methods = billing.get("/billing/payment-methods").json()["items"]
    assert [m["id"] for m in methods] == list(METHODS)
    assert all(m["name"] and m["accepts"] for m in methods)
    stripe = next(m for m in methods if m["id"] == "stripe")
    assert "iDEAL" in " ".join(stripe["accepts"])


def test_a_new_account_has_a_zero_balance_and_nothing_overdue(billing):
    assert billing.get("/billing/account").json() == {
        "balance": "0.00", "currency": "EUR", "overdue": False, "unpaid_invoices": 0, "amount_due": "0.00"}


@pytest.mark.parametrize("body, field", [
    ({"amount": 19.99, "method": "stripe"}, "amount"), ({"amount": "abc", "method": "stripe"}, "amount"),
    ({"amount": 25, "method": "cheque"}, "method"), ({"method": "stripe"}, "amount"),
])
def test_a_top_up_below_twenty_or_with_an_unknown_method_is_a_400_naming_the_field(billing, body, field):
    answer = requests.post(f"{billing.api}/billing/topups", json=body, headers=billing.headers("ann"), timeout=10)
    assert answer.status_code == 400 and field in answer.json()["error"]["fields"]


@pytest.mark.parametrize("method", METHODS)
def test_a_top_up_is_credited_through_each_provider(billing, method):
    created = billing.topup("25.00", method)
    assert created.status_code == 201, created.text
    topup = created.json()
    assert topup["status"] == "pending" and topup["amount"] == "25.00" and topup["method"] == method
    if method == "bank_wire":
        assert {"iban", "reference"} <= set(topup["instructions"])
    else:
        assert topup["redirect_url"].startswith("http")

    billing.pay(topup)

    wait_for(lambda: billing.balance() == "25.00", timeout=20, message=f"{method} top-up credited")
    assert billing.get(f"/billing/topups/{topup['id']}").json()["status"] == "succeeded"
    assert billing.balance("bob") == "0.00"


def test_a_failed_payment_credits_nothing(billing):
    topup = billing.topup("30.00", "stripe").json()
    billing.pay(topup, outcome="failed")
    wait_for(lambda: billing.get(f"/billing/topups/{topup['id']}").json()["status"] == "failed", message="failed")
    assert billing.balance() == "0.00"


def test_an_unpaid_top_up_fails_after_a_day_and_a_late_payment_is_still_credited(billing):
    topup = billing.topup("35.00", "paypal").json()
    with billing.rpc() as cluster:
        assert cluster.billing.expire_topups() == 0  # not a day old yet
        cluster.billing.advance_clock(25 * 3600)
        assert cluster.billing.expire_topups() == 1
        assert cluster.billing.expire_topups() == 0  # once
    assert billing.get(f"/billing/topups/{topup['id']}").json()["status"] == "failed"
    operation = billing.get(f"/operations/{topup['operation_id']}").json()
    assert operation["status"] == "failed" and operation["detail"].startswith("No payment arrived within 24 hours")
    assert billing.balance() == "0.00"

    billing.pay(topup)  # the customer pays after all: the money is never lost
    wait_for(lambda: billing.balance() == "35.00", timeout=20, message="the late payment credited")
    assert billing.get(f"/billing/topups/{topup['id']}").json()["status"] == "succeeded"
    late = [e for e in store_of(billing.service).read_after(0, limit=None) if e.type == "late_payment_credited"]
    assert [(e.data["topup_id"], e.data["amount"], e.data["user_id"]) for e in late] == [(topup["id"], "35.00", "ann")]


def test_a_redelivered_notification_credits_once(billing):
    topup = billing.topup("40.00", "coinbase").json()
    billing.pay(topup)
    wait_for(lambda: billing.balance() == "40.00", message="credited")
    for _ in range(3):
        requests.post(f"{billing.sandbox}/payments/{topup['provider_payment_id']}/redeliver", timeout=10)
    wait_for(lambda: len([d for d in requests.get(f"{billing.sandbox}/webhooks", timeout=10).json()
                          if d.get("payment_id", d.get("provider_payment_id")) == topup["provider_payment_id"]]) >= 4,
             message="redeliveries sent")
    assert billing.balance() == "40.00"


@pytest.mark.parametrize("provider", ["stripe", "coinbase", "revolut", "bank_wire"])
def test_a_notification_with_a_bad_signature_is_a_400_and_credits_nothing(billing, provider):
    answer = requests.post(f"{billing.api}/billing/webhooks/{provider}", data=b'{"id": "forged"}', timeout=10,
                           headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00",
                                    "X-CC-Webhook-Signature": "00", "Revolut-Signature": "v1=00",
                                    "Revolut-Request-Timestamp": "1", "X-Bank-Signature": "00",
                                    "X-Bank-Timestamp": "1"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert billing.balance() == "0.00"


def test_a_notification_declaring_a_huge_body_is_refused_before_it_is_read(billing):
    """The webhook route has no session: a body announced larger than 256 KiB is a 400 at
    once, without the gateway waiting for (or holding) its bytes."""
    api = urlsplit(billing.api)
    with socket.create_connection((api.hostname, api.port), timeout=5) as conn:
        conn.sendall(f"POST {api.path}/billing/webhooks/stripe HTTP/1.1\r\nHost: panel\r\n".encode()
                     + b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{")
        reply = conn.makefile("rb")
        status_line = reply.readline()
        headers = {}
        while (line := reply.readline().strip()):
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        body = json.loads(reply.read(int(headers["content-length"])))
    assert status_line.split()[1] == b"400"
    assert body["error"]["fields"] == {"body": ["At most 256 KiB."]}
    assert billing.balance() == "0.00"


def test_a_slow_provider_still_gets_its_top_up_created(billing):
    """Creating a top-up waits on the provider while the customer waits: a provider taking
    7 s (its limit is PAYMENT_TIMEOUT_SECONDS, 10) is past the gateway's usual 5 s RPC limit
    but inside its limit for such commands (RPC_SLOW_TIMEOUT_SECONDS, 30)."""
    requests.post(f"{billing.sandbox}/control", json={"provider": "stripe", "mode": "slow", "delay": 7},
                  timeout=10).raise_for_status()
    answer = billing.topup("25.00", "stripe")
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "pending" and answer.json()["redirect_url"]


def test_another_customers_top_up_is_not_found(billing):
    topup = billing.topup("25.00", "stripe").json()
    assert billing.get(f"/billing/topups/{topup['id']}", "bob").status_code == 404


def test_the_same_idempotency_key_returns_the_first_top_up(billing):
    first = billing.topup("50.00", "paypal", key="order-abc").json()
    again = billing.topup("50.00", "paypal", key="order-abc")
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    different = billing.topup("60.00", "paypal", key="order-abc")
    assert different.status_code == 409


def test_an_unpaid_renewal_marks_the_server_overdue_and_a_top_up_clears_it(billing):
    """R-SRV-3 with R-BILL-1/2: the clock passes the paid period; no balance → overdue."""
    with billing.rpc() as cluster:
        server = cluster.inventory.provision_server(
            "ann", "NL", "Dedicated AX41", {"cpu": "x"}, ["192.0.2.50"], "ubuntu-24.04",
            {"endpoint": "http://127.0.0.1:1", "system_id": "x"}, "2030-01-31", "49.00", None)
        wait_for(lambda: cluster.billing.run_billing() == 0 and _subscribed(billing), message="subscribed")
        cluster.billing.advance_clock(_days_until("2030-02-01"))
        assert cluster.billing.run_billing() == 1

    def server_status():
        items = billing.get("/servers", params={"q": server["number"]}).json()["items"]
        return items[0]["status"]

    wait_for(lambda: server_status() == "overdue", timeout=20, message="server overdue")
    account = billing.get("/billing/account").json()
    assert account["overdue"] is True and account["amount_due"] == "49.00"
    [invoice] = billing.get("/billing/invoices").json()["items"]
    assert invoice["status"] == "overdue" and invoice["server_number"] == server["number"]

    topup = billing.topup("60.00", "stripe").json()
    billing.pay(topup)

    wait_for(lambda: server_status() == "active", timeout=20,
             message=lambda: f"server active again: {billing.get('/billing/account').json()} "
                             f"{billing.get('/billing/invoices').json()['items']}")
    assert billing.balance() == "11.00"
    [invoice] = billing.get("/billing/invoices").json()["items"]
    assert invoice["status"] == "paid"
    assert billing.get("/servers", params={"q": server["number"]}).json()["items"][0]["paid_until"] == "2030-02-28"


def _subscribed(billing):
    with billing.rpc() as cluster:
        return cluster.billing.health()["last_position"] > 0


def _days_until(day):
    from datetime import date, datetime, timezone

    return (date.fromisoformat(day) - datetime.now(timezone.utc).date()).days * 86400 + 3600
