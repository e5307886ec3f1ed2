"""The billing service's payment adapters against the payments sandbox, over real HTTP
(R-BILL-2 top-ups, R-BILL-3 payment methods).

The sandbox runs as a process of its own (tests/payments.py), once for this module, and sends
its webhooks to a receiver in this process that records them byte for byte: each test sees
exactly what a provider would send the gateway and hands it to ``parse_webhook``. Each test
uses payments of its own and starts with every provider answering and the receiver empty.
"""

import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.config import MissingCredentials
from services.billing.adapters import (
    PaymentNotice,
    PaymentProviderError,
    WebhookRejected,
)
from services.billing.adapters.factory import DEV_SECRETS, build_payment_providers
from services.billing.adapters.methods import METHODS
from tests.payments import BANK_ACCOUNT, CREDENTIALS, HANG_UP, payments_sandbox  # noqa: F401

PROVIDERS = list(METHODS)
REDIRECTING = [name for name in PROVIDERS if name != "bank_wire"]
# Providers whose webhook carries its own signature (PayPal's is checked by PayPal, BitPay's
# IPN is not signed at all).
HMAC_SIGNED = ["stripe", "coinbase", "revolut", "bank_wire"]
TIMESTAMPED = ["stripe", "revolut", "bank_wire"]
WEBHOOK_SECRET_KEYS = {
    "stripe": "STRIPE_WEBHOOK_SECRET",
    "coinbase": "COINBASE_WEBHOOK_SECRET",
    "revolut": "REVOLUT_WEBHOOK_SECRET",
    "bank_wire": "BANK_WEBHOOK_SECRET",
}
API_CREDENTIAL_KEYS = {
    "paypal": "PAYPAL_CLIENT_SECRET",
    "stripe": "STRIPE_SECRET_KEY",
    "bank_wire": "BANK_API_KEY",
    "bitpay": "BITPAY_TOKEN",
    "coinbase": "COINBASE_API_KEY",
    "revolut": "REVOLUT_API_KEY",
}
RETURN_URL = "http://panel.local/billing/topups/return"
SIGNATURE_HEADERS = {
    "stripe": ["stripe-signature"],
    "coinbase": ["x-cc-webhook-signature"],
    "revolut": ["revolut-signature", "revolut-request-timestamp"],
    "bank_wire": ["x-bank-signature", "x-bank-timestamp"],
    "paypal": ["paypal-transmission-sig"],
}


@pytest.fixture(autouse=True)
def clean_sandbox(payments_sandbox):  # noqa: F811
    payments_sandbox.reset()
    yield


@pytest.fixture
def reference():
    """A top-up id of this test's own."""
    return f"topup-{uuid.uuid4().hex[:16]}"


class Observations:
    """An ``observe`` hook that remembers every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, adapter, provider, outcome, seconds):
        self.calls.append((adapter, provider, outcome, seconds))

    def outcomes(self):
        return [(adapter, provider, outcome) for adapter, provider, outcome, _ in self.calls]


def now():
    return datetime.now(timezone.utc)


def lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def create(sandbox, name, reference, amount="25.00", **overrides):
    provider = sandbox.providers(**overrides)[name]
    return provider, provider.create_payment(reference, Decimal(amount), "EUR", RETURN_URL)


def paid(sandbox, name, reference, outcome="succeeded", amount="25.00"):
    """Create a payment, complete it at the sandbox, wait for its webhook:
    ``(provider, provider_payment_id, webhook)``."""
    provider, created = create(sandbox, name, reference, amount)
    pid = created["provider_payment_id"]
    sandbox.complete(pid, outcome)
    [webhook] = sandbox.receiver.wait(name, pid)
    return provider, pid, webhook


def hmac_hex(secret, message):
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(name, body, signed_at, secret):
    """Headers signing ``body`` as provider ``name`` would at ``signed_at`` (Unix seconds)."""
    if name == "stripe":
        return {"Stripe-Signature": f"t={signed_at},v1={hmac_hex(secret, f'{signed_at}.'.encode() + body)}"}
    if name == "revolut":
        ms = signed_at * 1000
        return {"Revolut-Request-Timestamp": str(ms),
                "Revolut-Signature": f"v1={hmac_hex(secret, f'v1.{ms}.'.encode() + body)}"}
    if name == "bank_wire":
        signature = hmac_hex(secret, f"{signed_at}.".encode() + body)
        return {"X-Bank-Timestamp": str(signed_at), "X-Bank-Signature": signature}
    if name == "coinbase":
        return {"X-CC-Webhook-Signature": hmac_hex(secret, body)}
    raise ValueError(name)


# --- the methods and the factory --------------------------------------------------------------

def test_payment_methods_are_the_six_of_r_bill_3():
    """R-BILL-3: PayPal, Stripe, Bank Wire, Bitpay, Coinbase, Revolut, each with what it accepts."""
    assert list(METHODS) == ["paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut"]
    assert {name: method["name"] for name, method in METHODS.items()} == {
        "paypal": "PayPal", "stripe": "Stripe", "bank_wire": "Bank Wire",
        "bitpay": "Bitpay", "coinbase": "Coinbase", "revolut": "Revolut",
    }
    assert {"PayPal", "VISA", "Mastercard", "Amex"} <= set(METHODS["paypal"]["accepts"])
    assert {"VISA", "Mastercard", "Amex", "Alipay", "iDEAL"} <= set(METHODS["stripe"]["accepts"])
    assert {"BTC", "ETH"} <= set(METHODS["bitpay"]["accepts"])
    assert METHODS["revolut"]["accepts"] == ["Revolut Pay"]
    assert all(method["accepts"] and all(isinstance(a, str) for a in method["accepts"]) for method in METHODS.values())


def test_factory_builds_one_provider_per_method_in_order(payments_sandbox):  # noqa: F811
    providers = payments_sandbox.providers()
    assert list(providers) == PROVIDERS
    for name, provider in providers.items():
        assert provider.name == name
        text = repr(provider)
        assert all(secret not in text for secret in CREDENTIALS.values() if len(secret) > 6)


def test_factory_refuses_to_start_without_credentials():
    """No secret given (absent, null or empty): billing does not start — a webhook secret
    falling back to the public dev value would accept forged payment notices. The error
    names every missing key."""
    with pytest.raises(MissingCredentials) as refused:
        build_payment_providers({"STRIPE_WEBHOOK_SECRET": "", "BANK_WEBHOOK_SECRET": None})
    message = str(refused.value)
    for key in DEV_SECRETS:
        assert key in message
    given_but_one = {key: "configured" for key in DEV_SECRETS if key != "COINBASE_WEBHOOK_SECRET"}
    with pytest.raises(MissingCredentials, match="^billing: COINBASE_WEBHOOK_SECRET must be set"):
        build_payment_providers(given_but_one)


def test_factory_uses_dev_secrets_only_with_dev_credentials_on(payments_sandbox, reference):  # noqa: F811
    """With ``DEV_CREDENTIALS`` the adapters use the sandbox's dev values for what is unset
    — which this sandbox, started with other credentials, refuses; a key given wins."""
    bare = build_payment_providers({"PAYMENTS_BASE_URL": payments_sandbox.url, "PAYMENT_TIMEOUT_SECONDS": 5,
                                    "DEV_CREDENTIALS": "true"})
    with pytest.raises(PaymentProviderError, match="credentials refused"):
        bare["stripe"].create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    assert bare["stripe"]._secret_key == DEV_SECRETS["STRIPE_SECRET_KEY"]
    given = build_payment_providers({"STRIPE_SECRET_KEY": "sk_given", "DEV_CREDENTIALS": True})
    assert given["stripe"]._secret_key == "sk_given"
    assert given["stripe"].base_url == "http://127.0.0.1:9207/stripe"
    assert given["bank_wire"].base_url == "http://127.0.0.1:9207/bank"
    assert given["stripe"].timeout == 10


def test_a_provider_url_of_its_own_wins_over_the_base_url(payments_sandbox, reference):  # noqa: F811
    providers = payments_sandbox.providers(
        PAYMENTS_BASE_URL="http://127.0.0.1:9", STRIPE_API_URL=f"{payments_sandbox.url}/stripe/",
    )
    created = providers["stripe"].create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    assert created["provider_payment_id"].startswith("cs_")
    with pytest.raises(PaymentProviderError, match="could not reach"):
        providers["coinbase"].create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)


# --- creating payments ----------------------------------------------------------------------

ID_SHAPES = {
    "stripe": r"^cs_test_\w+$",
    "paypal": r"^[A-Z0-9]{17}$",
    "bitpay": r"^[A-Za-z0-9]{22}$",
    "coinbase": r"^[0-9a-f-]{36}$",
    "revolut": r"^[0-9a-f-]{36}$",
}


@pytest.mark.parametrize("name", REDIRECTING)
def test_create_payment_answers_an_id_and_a_redirect(payments_sandbox, name, reference):  # noqa: F811
    """R-BILL-2: a top-up through a redirecting provider gives the page to send the customer to."""
    observations = Observations()
    provider = payments_sandbox.providers(observe=observations)[name]
    created = provider.create_payment(reference, Decimal("42.50"), "EUR", RETURN_URL)

    assert set(created) == {"provider_payment_id", "redirect_url"}
    assert re.match(ID_SHAPES[name], created["provider_payment_id"])
    assert created["redirect_url"].startswith(payments_sandbox.url)
    stored = payments_sandbox.payment(created["provider_payment_id"])
    assert {k: stored[k] for k in ("provider", "amount", "currency", "reference", "status")} == {
        "provider": name, "amount": "42.50", "currency": "EUR", "reference": reference, "status": "pending",
    }
    assert stored["return_url"] == RETURN_URL
    assert observations.outcomes() == [("payments", name, "ok")]
    assert observations.calls[0][3] >= 0


def test_bank_wire_create_payment_answers_transfer_instructions(payments_sandbox, reference):  # noqa: F811
    provider, created = create(payments_sandbox, "bank_wire", reference, "120.00")
    _, other = create(payments_sandbox, "bank_wire", f"{reference}-2", "120.00")

    assert set(created) == {"provider_payment_id", "instructions"}
    assert created["provider_payment_id"].startswith("bw_")
    instructions = created["instructions"]
    assert instructions == {
        "iban": BANK_ACCOUNT["BANK_IBAN"], "bic": BANK_ACCOUNT["BANK_BIC"],
        "beneficiary": BANK_ACCOUNT["BANK_BENEFICIARY"], "reference": instructions["reference"],
        "amount": "120.00", "currency": "EUR",
    }
    assert re.fullmatch(r"HP-[A-HJ-NP-Z2-9]{10}", instructions["reference"])
    assert instructions["reference"] != other["instructions"]["reference"]
    stored = payments_sandbox.payment(created["provider_payment_id"])
    assert stored["transfer_reference"] == instructions["reference"]
    assert stored["reference"] == reference


@pytest.mark.parametrize("name", ["stripe", "paypal"])
def test_creating_twice_for_one_top_up_gives_the_same_payment(payments_sandbox, name, reference):  # noqa: F811
    """Stripe and PayPal take an idempotency key (derived from our reference): a caller that
    tries again after a time-out does not open a second payment."""
    provider = payments_sandbox.providers()[name]
    first = provider.create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    second = provider.create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    assert first == second
    assert len(payments_sandbox.payments(reference=reference)) == 1


@pytest.mark.parametrize("amount, currency, ref", [
    ("20.001", "EUR", "r1"), ("0", "EUR", "r1"), ("-5", "EUR", "r1"), ("NaN", "EUR", "r1"),
    ("25.00", "eur", "r1"), ("25.00", "EURO", "r1"), ("25.00", "EUR", ""), ("25.00", "EUR", "x" * 101),
])
def test_create_payment_refuses_what_it_cannot_send_before_any_call(
    payments_sandbox, amount, currency, ref,  # noqa: F811
):
    observations = Observations()
    for provider in payments_sandbox.providers(observe=observations).values():
        with pytest.raises(ValueError):
            provider.create_payment(ref, Decimal(amount), currency, RETURN_URL)
    assert observations.calls == []
    assert payments_sandbox.payments(reference=ref) == []


@pytest.mark.parametrize("name", PROVIDERS)
def test_refused_credentials_are_a_provider_error_without_the_secret(payments_sandbox, name, reference):  # noqa: F811
    observations = Observations()
    key = API_CREDENTIAL_KEYS[name]
    provider = payments_sandbox.providers(observe=observations, **{key: "wrong-credential-1234"})[name]
    with pytest.raises(PaymentProviderError) as raised:
        provider.create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    error = raised.value
    assert error.provider == name and not error.timed_out
    assert "credentials refused" in str(error)
    assert "wrong-credential-1234" not in str(error) and CREDENTIALS[key] not in str(error)
    assert observations.outcomes() == [("payments", name, "failed")]


@pytest.mark.parametrize("name", ["stripe", "paypal", "bank_wire"])
def test_a_provider_slower_than_the_time_limit_is_a_timeout(payments_sandbox, name, reference):  # noqa: F811
    observations = Observations()
    payments_sandbox.control(name, "slow", delay=3)
    provider = payments_sandbox.providers(observe=observations, PAYMENT_TIMEOUT_SECONDS=0.5)[name]
    started = time.monotonic()
    with pytest.raises(PaymentProviderError) as raised:
        provider.create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    assert raised.value.timed_out
    assert "no answer within 0.5 s" in str(raised.value)
    assert time.monotonic() - started < 2.5
    assert observations.outcomes() == [("payments", name, "timeout")]


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_provider_answering_503_is_a_provider_error(payments_sandbox, name, reference):  # noqa: F811
    payments_sandbox.control(name, "fail")
    provider = payments_sandbox.providers()[name]
    with pytest.raises(PaymentProviderError, match="HTTP 503") as raised:
        provider.create_payment(reference, Decimal("25.00"), "EUR", RETURN_URL)
    assert not raised.value.timed_out


# --- webhooks: what a completed payment sends ----------------------------------------------------

@pytest.mark.parametrize("name", PROVIDERS)
def test_a_completed_payment_sends_a_webhook_that_parses_to_a_succeeded_notice(
    payments_sandbox, name, reference,  # noqa: F811
):
    """R-BILL-2: the provider's signed notification tells which top-up was paid, and how much."""
    provider, pid, webhook = paid(payments_sandbox, name, reference, amount="37.50")

    assert webhook.path == f"/api/v1/billing/webhooks/{name}"
    assert provider.parse_webhook(webhook.headers, webhook.body, now()) == PaymentNotice(
        provider=name, provider_payment_id=pid, status="succeeded", amount="37.50", currency="EUR",
        reference=reference,
    )
    assert payments_sandbox.payment(pid)["status"] == "succeeded"


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_failed_payment_parses_to_a_failed_notice(payments_sandbox, name, reference):  # noqa: F811
    provider, pid, webhook = paid(payments_sandbox, name, reference, outcome="failed")
    notice = provider.parse_webhook(webhook.headers, webhook.body, now())
    assert (notice.status, notice.provider_payment_id, notice.reference, notice.amount) == (
        "failed", pid, reference, "25.00",
    )


@pytest.mark.parametrize("name", PROVIDERS)
def test_header_names_are_read_without_regard_to_case(payments_sandbox, name, reference):  # noqa: F811
    provider, pid, webhook = paid(payments_sandbox, name, reference)
    upper = {key.upper(): value for key, value in webhook.headers.items()}
    assert provider.parse_webhook(lower(webhook.headers), webhook.body, now()).provider_payment_id == pid
    assert provider.parse_webhook(upper, webhook.body, now()).provider_payment_id == pid


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_receiver_answering_500_gets_the_webhook_again(payments_sandbox, name, reference):  # noqa: F811
    """Providers retry a webhook that was not acknowledged: the same body, until a 2xx."""
    payments_sandbox.receiver.fail_next(name, count=1, status=500)
    provider, created = create(payments_sandbox, name, reference)
    pid = created["provider_payment_id"]
    delivery = payments_sandbox.complete(pid)["delivery"]

    first, second = payments_sandbox.receiver.wait(name, pid, count=2)
    assert (first.answered, second.answered) == (500, 200)
    assert first.body == second.body
    record = payments_sandbox.delivery(delivery, state="delivered")
    assert [attempt["status"] for attempt in record["attempts"]] == [500, 200]
    assert provider.parse_webhook(second.headers, second.body, now()).status == "succeeded"


def test_a_dropped_connection_is_retried_too(payments_sandbox, reference):  # noqa: F811
    payments_sandbox.receiver.fail_next("revolut", count=1, status=HANG_UP)
    provider, created = create(payments_sandbox, "revolut", reference)
    pid = created["provider_payment_id"]
    delivery = payments_sandbox.complete(pid)["delivery"]

    first, second = payments_sandbox.receiver.wait("revolut", pid, count=2)
    assert first.body == second.body
    record = payments_sandbox.delivery(delivery, state="delivered")
    assert [(a["status"], a["error"]) for a in record["attempts"]] == [(None, "ConnectionError"), (200, None)]
    assert provider.parse_webhook(second.headers, second.body, now()).status == "succeeded"


def test_a_receiver_that_never_answers_2xx_is_given_up_on(payments_sandbox, reference):  # noqa: F811
    payments_sandbox.receiver.fail_next("coinbase", count=10, status=503)
    _, created = create(payments_sandbox, "coinbase", reference)
    delivery = payments_sandbox.complete(created["provider_payment_id"])["delivery"]
    record = payments_sandbox.delivery(delivery, state="failed", timeout=20)
    assert [attempt["status"] for attempt in record["attempts"]] == [503] * 6


@pytest.mark.parametrize("name", PROVIDERS)
def test_redeliver_sends_the_identical_body_again(payments_sandbox, name, reference):  # noqa: F811
    """A duplicate delivery (the gateway must credit once) is the same notification."""
    provider, pid, first = paid(payments_sandbox, name, reference)
    payments_sandbox.redeliver(pid)
    _, second = payments_sandbox.receiver.wait(name, pid, count=2)

    assert second.body == first.body
    assert provider.parse_webhook(second.headers, second.body, now()) == \
        provider.parse_webhook(first.headers, first.body, now())


def test_a_bank_transfer_with_the_reference_notifies_what_arrived(payments_sandbox, reference):  # noqa: F811
    """Bank wire: the customer transfers with our payment reference; the bank tells us; the
    notice carries the amount that arrived (here less than asked)."""
    provider, created = create(payments_sandbox, "bank_wire", reference, "50.00")
    transfer_reference = created["instructions"]["reference"]
    payments_sandbox.incoming_transfer(transfer_reference.lower(), "45.00")
    [webhook] = payments_sandbox.receiver.wait("bank_wire", created["provider_payment_id"])

    assert provider.parse_webhook(webhook.headers, webhook.body, now()) == PaymentNotice(
        provider="bank_wire", provider_payment_id=created["provider_payment_id"], status="succeeded",
        amount="45.00", currency="EUR", reference=reference,
    )
    answer = requests.post(f"{payments_sandbox.url}/bank/incoming-transfers", timeout=5,
                           json={"reference": "HP-NOSUCHREF0", "amount": "10.00", "currency": "EUR"})
    assert answer.status_code == 404


def test_paying_on_the_checkout_page_redirects_back_and_notifies(payments_sandbox, reference):  # noqa: F811
    provider, created = create(payments_sandbox, "stripe", reference)
    page = requests.get(created["redirect_url"], timeout=5)
    assert page.status_code == 200 and "25.00" in page.text
    answer = requests.post(created["redirect_url"], data={"outcome": "succeeded"}, allow_redirects=False, timeout=5)
    assert (answer.status_code, answer.headers["Location"]) == (303, RETURN_URL)
    [webhook] = payments_sandbox.receiver.wait("stripe", created["provider_payment_id"])
    assert provider.parse_webhook(webhook.headers, webhook.body, now()).status == "succeeded"


def test_the_sandbox_completes_a_payment_once(payments_sandbox, reference):  # noqa: F811
    _, created = create(payments_sandbox, "coinbase", reference)
    pid = created["provider_payment_id"]
    url = f"{payments_sandbox.url}/payments/{pid}"
    assert requests.post(f"{url}/redeliver", timeout=5).status_code == 409  # nothing sent yet
    assert requests.post(f"{url}/complete", json={"outcome": "maybe"}, timeout=5).status_code == 400
    payments_sandbox.complete(pid, "succeeded")
    assert requests.post(f"{url}/complete", json={"outcome": "failed"}, timeout=5).status_code == 409
    assert requests.post(f"{payments_sandbox.url}/payments/nope/complete", json={"outcome": "failed"},
                         timeout=5).status_code == 404


# --- retrieving a payment: the webhook that never came ------------------------------------------

UNKNOWN_PAYMENT_ID = "no_such_payment-0000000000"


def settle(sandbox, name, created, outcome="succeeded", amount="25.00"):
    """Complete a created payment at the sandbox; for bank wire a success is the customer's
    transfer of ``amount`` arriving with our payment reference."""
    if name == "bank_wire" and outcome == "succeeded":
        sandbox.incoming_transfer(created["instructions"]["reference"], amount)
    else:
        sandbox.complete(created["provider_payment_id"], outcome)


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_a_payment_not_made_yet_answers_none(payments_sandbox, name, reference):  # noqa: F811
    """Open, pending, waiting for the customer: nothing to settle yet."""
    observations = Observations()
    provider, created = create(payments_sandbox, name, reference, observe=observations)
    assert provider.retrieve_payment(created["provider_payment_id"]) is None
    assert observations.outcomes() == [("payments", name, "ok")] * 2


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_a_completed_payment_answers_what_its_webhook_says(
    payments_sandbox, name, reference,  # noqa: F811
):
    """R-BILL-2 without the webhook: asked, the provider tells which top-up was paid, and how
    much — the very notice its webhook parses to."""
    provider, created = create(payments_sandbox, name, reference, "37.50")
    pid = created["provider_payment_id"]
    settle(payments_sandbox, name, created, amount="37.50")

    notice = provider.retrieve_payment(pid)
    assert notice == PaymentNotice(
        provider=name, provider_payment_id=pid, status="succeeded", amount="37.50", currency="EUR",
        reference=reference,
    )
    [webhook] = payments_sandbox.receiver.wait(name, pid)
    assert provider.parse_webhook(webhook.headers, webhook.body, now()) == notice


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_a_failed_payment_answers_a_failed_notice(payments_sandbox, name, reference):  # noqa: F811
    provider, created = create(payments_sandbox, name, reference)
    pid = created["provider_payment_id"]
    settle(payments_sandbox, name, created, "failed")

    notice = provider.retrieve_payment(pid)
    assert notice == PaymentNotice(
        provider=name, provider_payment_id=pid, status="failed", amount="25.00", currency="EUR",
        reference=reference,
    )
    [webhook] = payments_sandbox.receiver.wait(name, pid)
    assert provider.parse_webhook(webhook.headers, webhook.body, now()) == notice


def test_retrieving_a_bank_transfer_answers_the_amount_that_arrived(payments_sandbox, reference):  # noqa: F811
    provider, created = create(payments_sandbox, "bank_wire", reference, "50.00")
    payments_sandbox.incoming_transfer(created["instructions"]["reference"].lower(), "45.00")
    notice = provider.retrieve_payment(created["provider_payment_id"])
    assert (notice.status, notice.amount, notice.reference) == ("succeeded", "45.00", reference)


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_an_unknown_payment_is_a_provider_error(payments_sandbox, name):  # noqa: F811
    """Billing keeps the top-up pending and asks again later; the reason says what happened
    and shows no credential."""
    observations = Observations()
    provider = payments_sandbox.providers(observe=observations)[name]
    with pytest.raises(PaymentProviderError) as raised:
        provider.retrieve_payment(UNKNOWN_PAYMENT_ID)
    error = raised.value
    assert (error.provider, error.timed_out) == (name, False)
    assert "HTTP 404: the provider knows no such payment" in str(error)
    assert all(secret not in str(error) for secret in CREDENTIALS.values())
    assert observations.outcomes() == [("payments", name, "failed")]


@pytest.mark.parametrize("payment_id", ["", "../../payments", "cs_1?expand=x", "x" * 129, None, 42])
def test_retrieving_an_id_that_cannot_be_one_is_refused_before_any_call(payments_sandbox, payment_id):  # noqa: F811
    observations = Observations()
    for provider in payments_sandbox.providers(observe=observations).values():
        with pytest.raises(ValueError):
            provider.retrieve_payment(payment_id)
    assert observations.calls == []


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_with_refused_credentials_is_a_provider_error(payments_sandbox, name, reference):  # noqa: F811
    _, created = create(payments_sandbox, name, reference)
    key = API_CREDENTIAL_KEYS[name]
    provider = payments_sandbox.providers(**{key: "wrong-credential-1234"})[name]
    with pytest.raises(PaymentProviderError, match="credentials refused") as raised:
        provider.retrieve_payment(created["provider_payment_id"])
    assert "wrong-credential-1234" not in str(raised.value) and CREDENTIALS[key] not in str(raised.value)


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_from_a_provider_answering_503_is_a_provider_error(
    payments_sandbox, name, reference,  # noqa: F811
):
    provider, created = create(payments_sandbox, name, reference)
    payments_sandbox.control(name, "fail")
    with pytest.raises(PaymentProviderError, match="HTTP 503") as raised:
        provider.retrieve_payment(created["provider_payment_id"])
    assert not raised.value.timed_out


@pytest.mark.parametrize("name", PROVIDERS)
def test_retrieving_from_a_provider_slower_than_the_time_limit_is_a_timeout(
    payments_sandbox, name, reference,  # noqa: F811
):
    observations = Observations()
    provider, created = create(payments_sandbox, name, reference, observe=observations, PAYMENT_TIMEOUT_SECONDS=0.5)
    payments_sandbox.control(name, "slow", delay=3)
    started = time.monotonic()
    with pytest.raises(PaymentProviderError) as raised:
        provider.retrieve_payment(created["provider_payment_id"])
    assert raised.value.timed_out
    assert "no answer within 0.5 s" in str(raised.value)
    assert time.monotonic() - started < 2.5
    assert observations.outcomes() == [("payments", name, "ok"), ("payments", name, "timeout")]


def paypal_order(status, captures=None):
    """A PayPal order as ``GET /v2/checkout/orders/<id>`` answers it, with captures once paid."""
    unit = {"reference_id": "topup-1", "custom_id": "topup-1", "amount": {"currency_code": "EUR", "value": "25.00"}}
    if captures is not None:
        unit["payments"] = {"captures": captures}
    return {"id": "5O190127TN364715T", "intent": "CAPTURE", "status": status, "purchase_units": [unit]}


def capture(status, value="25.00"):
    return {"id": "3C679366HH908993F", "status": status, "final_capture": True,
            "amount": {"currency_code": "EUR", "value": value}}


@pytest.mark.parametrize("order, expected", [
    (paypal_order("PAYER_ACTION_REQUIRED"), None),
    (paypal_order("APPROVED"), None),
    (paypal_order("VOIDED"), ("failed", "25.00")),
    (paypal_order("COMPLETED"), ("succeeded", "25.00")),
    (paypal_order("COMPLETED", [capture("COMPLETED", "24.99")]), ("succeeded", "24.99")),
    (paypal_order("COMPLETED", [capture("PENDING")]), None),
    (paypal_order("COMPLETED", [capture("DECLINED")]), ("failed", "25.00")),
    (paypal_order("COMPLETED", [capture("DECLINED"), capture("COMPLETED")]), ("succeeded", "25.00")),
])
def test_paypal_reads_an_order_by_its_capture_once_there(payments_sandbox, order, expected):  # noqa: F811
    """A COMPLETED order's capture may still be pending, or declined: the capture decides. The
    sandbox's orders carry no captures, so this reads orders shaped as PayPal documents them."""
    notice = payments_sandbox.providers()["paypal"]._order_notice(order)
    if expected is None:
        assert notice is None
    else:
        assert (notice.status, notice.amount, notice.reference, notice.provider_payment_id) == (
            *expected, "topup-1", "5O190127TN364715T",
        )


# --- webhooks not to be trusted -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["stripe", "coinbase", "revolut", "bank_wire", "paypal"])
def test_a_tampered_body_is_rejected(payments_sandbox, name, reference):  # noqa: F811
    provider, pid, webhook = paid(payments_sandbox, name, reference)
    tampered = webhook.body.replace(reference.encode(), b"topup-of-an-attacker")
    assert tampered != webhook.body
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(webhook.headers, tampered, now())
    assert raised.value.reason == ("unverified" if name == "paypal" else "bad_signature")
    assert raised.value.provider == name


def test_bitpay_trusts_only_the_invoice_it_fetches_back(payments_sandbox, reference):  # noqa: F811
    """BitPay signs no IPN: a body naming another reference, amount or status changes nothing."""
    provider, pid, webhook = paid(payments_sandbox, "bitpay", reference)
    event = json.loads(webhook.body)
    event["data"].update(orderId="topup-of-an-attacker", price=99999, status="expired")
    notice = provider.parse_webhook(webhook.headers, json.dumps(event).encode(), now())
    assert (notice.reference, notice.amount, notice.status) == (reference, "25.00", "succeeded")


def test_bitpay_ipn_for_an_unpaid_invoice_settles_nothing(payments_sandbox, reference):  # noqa: F811
    provider, created = create(payments_sandbox, "bitpay", reference)
    forged = json.dumps({"event": {"code": 1005, "name": "invoice_confirmed"},
                         "data": {"id": created["provider_payment_id"], "status": "confirmed"}}).encode()
    assert provider.parse_webhook({}, forged, now()) is None


@pytest.mark.parametrize("body, reason", [
    (json.dumps({"data": {"id": "NoSuchInvoice0000000000"}}).encode(), "unverified"),
    (json.dumps({"data": {"id": "../../payments"}}).encode(), "malformed"),
    (json.dumps({"data": {}}).encode(), "malformed"),
    (b"not json", "malformed"),
])
def test_bitpay_ipn_naming_no_known_invoice_is_rejected(payments_sandbox, body, reason):  # noqa: F811
    provider = payments_sandbox.providers()["bitpay"]
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook({}, body, now())
    assert raised.value.reason == reason


def test_bitpay_refusing_our_token_on_the_fetch_is_a_provider_error(payments_sandbox, reference):  # noqa: F811
    """A refused fetch is our configuration's fault, not the notification's: the gateway
    answers 5xx and BitPay sends the IPN again later."""
    _, _, webhook = paid(payments_sandbox, "bitpay", reference)
    provider = payments_sandbox.providers(BITPAY_TOKEN="wrong-token")["bitpay"]
    with pytest.raises(PaymentProviderError, match="credentials refused"):
        provider.parse_webhook(webhook.headers, webhook.body, now())


@pytest.mark.parametrize("name", HMAC_SIGNED)
def test_a_webhook_checked_with_the_wrong_secret_is_rejected(payments_sandbox, name, reference):  # noqa: F811
    _, pid, webhook = paid(payments_sandbox, name, reference)
    provider = payments_sandbox.providers(**{WEBHOOK_SECRET_KEYS[name]: "not-the-secret"})[name]
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(webhook.headers, webhook.body, now())
    assert raised.value.reason == "bad_signature"


def test_paypal_webhook_for_another_webhook_id_is_unverified(payments_sandbox, reference):  # noqa: F811
    observations = Observations()
    _, _, webhook = paid(payments_sandbox, "paypal", reference)
    provider = payments_sandbox.providers(observe=observations, PAYPAL_WEBHOOK_ID="WH-SOMEONE-ELSE")["paypal"]
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(webhook.headers, webhook.body, now())
    assert raised.value.reason == "unverified"
    assert ("payments", "paypal", "ok") in observations.outcomes()  # the verify call itself worked


@pytest.mark.parametrize("name", ["stripe", "coinbase", "revolut", "bank_wire", "paypal"])
def test_a_webhook_without_its_signature_headers_is_rejected(payments_sandbox, name, reference):  # noqa: F811
    provider, _, webhook = paid(payments_sandbox, name, reference)
    for header in SIGNATURE_HEADERS[name]:
        stripped = {k: v for k, v in webhook.headers.items() if k.lower() != header}
        with pytest.raises(WebhookRejected) as raised:
            provider.parse_webhook(stripped, webhook.body, now())
        assert raised.value.reason == "bad_signature"


@pytest.mark.parametrize("name", TIMESTAMPED)
def test_a_webhook_signed_too_long_ago_is_stale(payments_sandbox, name, reference):  # noqa: F811
    """A replayed notification: correctly signed, but more than 300 s ago (or ahead)."""
    provider, _, webhook = paid(payments_sandbox, name, reference)
    secret = CREDENTIALS[WEBHOOK_SECRET_KEYS[name]]
    moment = now()
    for offset, accepted in ((-301, False), (-299, True), (299, True), (301, False)):
        headers = signed_headers(name, webhook.body, int(moment.timestamp()) + offset, secret)
        if accepted:
            assert provider.parse_webhook(headers, webhook.body, moment).status == "succeeded"
        else:
            with pytest.raises(WebhookRejected) as raised:
                provider.parse_webhook(headers, webhook.body, moment)
            assert raised.value.reason == "stale"
    with pytest.raises(WebhookRejected, match="stale"):
        provider.parse_webhook(webhook.headers, webhook.body, moment + timedelta(minutes=10))


@pytest.mark.parametrize("name", HMAC_SIGNED)
def test_a_signed_body_that_is_not_json_is_malformed(payments_sandbox, name):  # noqa: F811
    provider = payments_sandbox.providers()[name]
    body = b"<html>not a notification</html>"
    headers = signed_headers(name, body, int(now().timestamp()), CREDENTIALS[WEBHOOK_SECRET_KEYS[name]])
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(headers, body, now())
    assert raised.value.reason == "malformed"


def test_stripe_events_we_do_not_act_on_settle_nothing(payments_sandbox):  # noqa: F811
    provider = payments_sandbox.providers()["stripe"]
    body = json.dumps({"id": "evt_1", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}).encode()
    headers = signed_headers("stripe", body, int(now().timestamp()), CREDENTIALS["STRIPE_WEBHOOK_SECRET"])
    assert provider.parse_webhook(headers, body, now()) is None


def test_revolut_completed_event_for_an_order_not_completed_is_unverified(payments_sandbox, reference):  # noqa: F811
    """Revolut's webhook carries no amount: the order is fetched, and must agree."""
    provider, created = create(payments_sandbox, "revolut", reference)
    body = json.dumps({"event": "ORDER_COMPLETED", "order_id": created["provider_payment_id"],
                       "merchant_order_ext_ref": reference}).encode()
    headers = signed_headers("revolut", body, int(now().timestamp()), CREDENTIALS["REVOLUT_WEBHOOK_SECRET"])
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(headers, body, now())
    assert raised.value.reason == "unverified"


def test_rejections_say_why_without_secrets_or_signatures(payments_sandbox, reference):  # noqa: F811
    provider, _, webhook = paid(payments_sandbox, "stripe", reference)
    signature = webhook.headers["Stripe-Signature"]
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(webhook.headers, webhook.body + b" ", now())
    text = str(raised.value)
    assert "stripe" in text and "bad_signature" in text
    assert signature.split("v1=")[1] not in text and CREDENTIALS["STRIPE_WEBHOOK_SECRET"] not in text
    with pytest.raises(ValueError):
        WebhookRejected("because")


# --- properties ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", HMAC_SIGNED)
def test_any_changed_byte_of_a_signed_body_is_a_bad_signature(payments_sandbox, name, reference):  # noqa: F811
    provider, _, webhook = paid(payments_sandbox, name, reference)
    body = webhook.body

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(position=st.integers(min_value=0, max_value=len(body) - 1), byte=st.integers(min_value=0, max_value=255))
    def check(position, byte):
        if body[position] == byte:
            return
        changed = body[:position] + bytes([byte]) + body[position + 1:]
        with pytest.raises(WebhookRejected) as raised:
            provider.parse_webhook(webhook.headers, changed, now())
        assert raised.value.reason == "bad_signature"

    check()


def test_any_top_up_amount_comes_back_exact_through_every_provider(payments_sandbox):  # noqa: F811
    """Amounts go out in each provider's form (cents, decimal text, JSON numbers) and come back
    in the notice as the same two-decimal text, from the webhook and when retrieved alike."""
    providers = payments_sandbox.providers()

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        cents=st.integers(min_value=2000, max_value=10_000_000),
        name=st.sampled_from(PROVIDERS),
    )
    def check(cents, name):
        amount = (Decimal(cents) / 100).quantize(Decimal("0.01"))
        reference = f"topup-{uuid.uuid4().hex[:16]}"
        created = providers[name].create_payment(reference, amount, "EUR", RETURN_URL)
        pid = created["provider_payment_id"]
        payments_sandbox.complete(pid)
        [webhook] = payments_sandbox.receiver.wait(name, pid)
        notice = providers[name].parse_webhook(webhook.headers, webhook.body, now())
        assert (notice.amount, notice.reference, notice.provider_payment_id) == (str(amount), reference, pid)
        assert providers[name].retrieve_payment(pid) == notice

    check()
