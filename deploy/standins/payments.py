"""The payments sandbox: one process playing the six payment providers of the billing
service (services/billing/adapters/), each under a path prefix, in the shape of its real
API — and sending each provider's signed webhooks when a payment is completed.

- ``stripe``: ``POST /stripe/v1/checkout/sessions`` (form, ``Authorization: Bearer <secret
  key>``, ``Idempotency-Key``), ``GET /stripe/v1/checkout/sessions/<id>``; webhooks signed
  ``Stripe-Signature: t=…,v1=…``.
- ``paypal``: ``POST /paypal/v1/oauth2/token`` (Basic client id:secret),
  ``POST /paypal/v2/checkout/orders`` (Bearer token, ``PayPal-Request-Id``),
  ``GET /paypal/v2/checkout/orders/<id>``, ``POST /paypal/v1/notifications/verify-webhook-signature``;
  webhooks with ``PAYPAL-TRANSMISSION-*`` headers, checkable only through that verify call.
- ``bitpay``: ``POST /bitpay/invoices`` (token in the body), ``GET /bitpay/invoices/<id>?token=``;
  unsigned IPNs.
- ``coinbase``: ``POST /coinbase/charges``, ``GET /coinbase/charges/<id or code>``
  (``X-CC-Api-Key``); webhooks signed ``X-CC-Webhook-Signature``.
- ``revolut``: ``POST /revolut/api/orders``, ``GET /revolut/api/orders/<id>`` (Bearer);
  webhooks signed ``Revolut-Signature: v1=…`` with ``Revolut-Request-Timestamp``.
- ``bank_wire``: ``POST /bank/expected-transfers`` (Bearer), ``GET /bank/expected-transfers/<id>``,
  and the payer's side ``POST /bank/incoming-transfers`` ``{"reference", "amount",
  "currency"}``; webhooks signed ``X-Bank-Signature`` with ``X-Bank-Timestamp``.

For people and tests: ``GET /payments[?provider=&reference=]``, ``GET /payments/<id>``,
``POST /payments/<id>/complete`` ``{"outcome": "succeeded"|"failed"}`` (202; the webhook goes
to ``<webhook-base>/<provider>`` from a background thread, retried with back-off on a
non-2xx answer or a connection error), ``POST /payments/<id>/redeliver`` (the same body
again), ``GET /webhooks[?payment_id=&provider=]`` (each delivery and the status of each
attempt), ``GET /checkout/<id>`` (a page to pay or fail by hand: where every ``redirect_url``
leads), failure modes ``GET/POST /control`` (base.py; provider ``bank_wire`` for the bank).
Credentials from the environment with dev defaults (README.md). Nothing here logs a
credential or a signature (request lines are logged with ``token=`` masked).

    python -m deploy.standins.payments [--host 127.0.0.1] [--port 9207]
        [--webhook-base http://127.0.0.1:8000/api/v1/billing/webhooks]
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import string
import threading
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import requests
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from deploy.standins.base import (
    BadRequest,
    StandinApp,
    json_response,
    new_id,
    read_json,
    same_secret,
    serve,
    setting,
)

PROVIDERS = ("paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut")
DEFAULT_PORT = 9207
DEFAULT_WEBHOOK_BASE = "http://127.0.0.1:8000/api/v1/billing/webhooks"
# Pauses between delivery attempts: 6 attempts over about 30 s.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
DEFAULT_ATTEMPT_TIMEOUT = 5.0
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
OUTCOMES = (SUCCEEDED, FAILED)
CENT = Decimal("0.01")

# name → dev default; the billing adapters (services/billing/adapters/factory.py) default to
# the same values.
CREDENTIALS = {
    "STRIPE_SECRET_KEY": "sk_test_dev",
    "STRIPE_WEBHOOK_SECRET": "whsec_dev",
    "PAYPAL_CLIENT_ID": "dev-paypal-client",
    "PAYPAL_CLIENT_SECRET": "dev-paypal-secret",
    "PAYPAL_WEBHOOK_ID": "WH-DEV-0001",
    "BITPAY_TOKEN": "dev-bitpay-token",
    "COINBASE_API_KEY": "dev-coinbase-key",
    "COINBASE_WEBHOOK_SECRET": "dev-coinbase-webhook-secret",
    "REVOLUT_API_KEY": "sk_dev_revolut",
    "REVOLUT_WEBHOOK_SECRET": "wsk_dev_revolut",
    "BANK_API_KEY": "dev-bank-key",
    "BANK_WEBHOOK_SECRET": "dev-bank-webhook-secret",
}
BANK_ACCOUNT = {
    "BANK_IBAN": "NL91ABNA0417164300",
    "BANK_BIC": "ABNANL2A",
    "BANK_BENEFICIARY": "HostPanel B.V.",
}
PAYPAL_TOKEN_LIFETIME = 32400
STRIPE_API_VERSION = "2024-06-20"
COINBASE_API_VERSION = "2018-03-22"


# --- small helpers -------------------------------------------------------------------------

def utcnow():
    return datetime.now(timezone.utc)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def random_text(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def hmac_hex(secret, message):
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_amount(value, what="amount"):
    """A positive amount with at most two decimals as ``Decimal``, else 400."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadRequest({"error": f"{what} must be a number"}) from None
    if isinstance(value, bool) or not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise BadRequest({"error": f"{what} must be positive with at most two decimals"})
    return amount.quantize(CENT)


def parse_currency(value):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise BadRequest({"error": "currency must be a three-letter code"})
    return value.upper()


def cents(amount):
    return int(Decimal(amount) * 100)


def bearer(request):
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class _MaskTokens(logging.Filter):
    """Masks ``token=<value>`` in werkzeug's request lines (BitPay's token is in the query)."""

    pattern = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "token=" in message:
            record.msg, record.args = self.pattern.sub(r"\1<masked>", message), None
        return True


# --- webhook deliveries ----------------------------------------------------------------------

class Deliveries:
    """Sends webhooks from background threads, retrying with back-off; keeps a log of every
    delivery and attempt (never a header or a signature)."""

    def __init__(self, webhook_base, delays=DEFAULT_RETRY_DELAYS, attempt_timeout=DEFAULT_ATTEMPT_TIMEOUT):
        self.webhook_base = webhook_base.rstrip("/")
        self.delays = tuple(delays)
        self.attempt_timeout = attempt_timeout
        self._lock = threading.Lock()
        self._log = []
        self._stopping = threading.Event()

    def send(self, provider, payment_id, event_type, body, sign, url=None):
        """Deliver ``body`` (bytes); ``sign(body)`` gives the signature headers, afresh for
        each attempt (a provider re-signs every try). Returns the delivery id."""
        record = {
            "id": "dlv_" + new_id(), "provider": provider, "payment_id": payment_id, "event": event_type,
            "url": url or f"{self.webhook_base}/{provider}", "state": "sending", "created_at": iso(utcnow()),
            "body_sha256": hashlib.sha256(body).hexdigest(), "attempts": [],
        }
        with self._lock:
            self._log.append(record)
        threading.Thread(
            target=self._deliver, args=(record, body, sign), name=f"webhook-{record['id']}", daemon=True,
        ).start()
        return record["id"]

    def _deliver(self, record, body, sign):
        for number, pause in enumerate((0.0, *self.delays), start=1):
            if pause and self._stopping.wait(pause):
                self._update(record, state="abandoned")
                return
            headers = {"Content-Type": "application/json", "User-Agent": f"payments-sandbox/{record['provider']}"}
            headers.update(sign(body))
            status, error = None, None
            try:
                answer = requests.post(record["url"], data=body, headers=headers, timeout=self.attempt_timeout)
                status = answer.status_code
            except requests.RequestException as failure:
                error = type(failure).__name__
            with self._lock:
                record["attempts"].append({"number": number, "at": iso(utcnow()), "status": status, "error": error})
            if status is not None and 200 <= status < 300:
                self._update(record, state="delivered")
                return
        self._update(record, state="failed")

    def _update(self, record, **changes):
        with self._lock:
            record.update(changes)

    def list(self, payment_id=None, provider=None):
        with self._lock:
            records = [dict(r, attempts=[dict(a) for a in r["attempts"]]) for r in self._log]
        return [
            r for r in records
            if (payment_id is None or r["payment_id"] == payment_id) and (provider is None or r["provider"] == provider)
        ]

    def stop(self):
        self._stopping.set()


# --- the sandbox -----------------------------------------------------------------------------

class PaymentsSandbox(StandinApp):
    name = "payments"
    providers = PROVIDERS

    def __init__(self, credentials, bank_account, deliveries):
        self.credentials = dict(credentials)
        self.bank_account = dict(bank_account)
        self.deliveries = deliveries
        self._lock = threading.Lock()
        self._payments = {}  # id → payment record
        self._idempotency = {}  # (provider, key) → payment id
        self._paypal_tokens = {}  # access token → expiry (monotonic)
        # PayPal signs with a certificate; the sandbox with a key of its own, known to no one.
        self._paypal_signing_key = secrets.token_bytes(32)
        super().__init__()

    def provider_rules(self):
        return [
            Rule("/stripe/v1/checkout/sessions", methods=["POST"], endpoint="stripe_create"),
            Rule("/stripe/v1/checkout/sessions/<pid>", methods=["GET"], endpoint="stripe_get"),
            Rule("/paypal/v1/oauth2/token", methods=["POST"], endpoint="paypal_token"),
            Rule("/paypal/v2/checkout/orders", methods=["POST"], endpoint="paypal_create"),
            Rule("/paypal/v2/checkout/orders/<pid>", methods=["GET"], endpoint="paypal_get"),
            Rule("/paypal/v1/notifications/verify-webhook-signature", methods=["POST"], endpoint="paypal_verify"),
            Rule("/bitpay/invoices", methods=["POST"], endpoint="bitpay_create"),
            Rule("/bitpay/invoices/<pid>", methods=["GET"], endpoint="bitpay_get"),
            Rule("/coinbase/charges", methods=["POST"], endpoint="coinbase_create"),
            Rule("/coinbase/charges/<pid>", methods=["GET"], endpoint="coinbase_get"),
            Rule("/revolut/api/orders", methods=["POST"], endpoint="revolut_create"),
            Rule("/revolut/api/orders/<pid>", methods=["GET"], endpoint="revolut_get"),
            Rule("/bank/expected-transfers", methods=["POST"], endpoint="bank_create"),
            Rule("/bank/expected-transfers/<pid>", methods=["GET"], endpoint="bank_get"),
            Rule("/bank/incoming-transfers", methods=["POST"], endpoint="bank_incoming"),
            Rule("/payments", methods=["GET"], endpoint="list_payments"),
            Rule("/payments/<pid>", methods=["GET"], endpoint="show_payment"),
            Rule("/payments/<pid>/complete", methods=["POST"], endpoint="complete_payment"),
            Rule("/payments/<pid>/redeliver", methods=["POST"], endpoint="redeliver_payment"),
            Rule("/webhooks", methods=["GET"], endpoint="list_webhooks"),
            Rule("/checkout/<pid>", methods=["GET"], endpoint="checkout_page"),
            Rule("/checkout/<pid>", methods=["POST"], endpoint="checkout_submit"),
        ]

    def secret(self, name):
        return self.credentials[name]

    # --- the store ------------------------------------------------------------------------

    def _remember(self, request, provider, pid, amount, currency, reference, return_url,
                  details=None, idempotency_key=None):
        """Store a new pending payment (or, for a known idempotency key, return the first)."""
        with self._lock:
            if idempotency_key:
                known = self._idempotency.get((provider, idempotency_key))
                if known is not None:
                    return dict(self._payments[known]), False
            payment = {
                "id": pid, "provider": provider, "amount": str(amount), "currency": currency,
                "reference": reference, "status": PENDING, "created_at": iso(utcnow()), "completed_at": None,
                "return_url": return_url, "sandbox_url": request.host_url, "details": dict(details or {}),
                "webhook": None,  # (event type, body bytes) once completed
            }
            self._payments[pid] = payment
            if idempotency_key:
                self._idempotency[(provider, idempotency_key)] = pid
            return dict(payment), True

    def _get(self, pid, provider=None):
        with self._lock:
            payment = self._payments.get(pid)
            payment = dict(payment, details=dict(payment["details"])) if payment else None
        if payment is None or (provider is not None and payment["provider"] != provider):
            return None
        return payment

    def _find(self, predicate):
        with self._lock:
            return [dict(p, details=dict(p["details"])) for p in self._payments.values() if predicate(p)]

    def public(self, payment):
        """What ``/payments`` shows of a payment."""
        view = {key: payment[key] for key in (
            "id", "provider", "amount", "currency", "reference", "status", "created_at", "completed_at",
            "return_url",
        )}
        if payment["provider"] == "bank_wire":
            view["transfer_reference"] = payment["details"]["transfer_reference"]
            view["received_amount"] = payment["details"].get("received_amount")
        else:
            view["checkout_url"] = self.checkout_url(payment)
        view["webhook_event"] = payment["webhook"][0] if payment["webhook"] else None
        return view

    @staticmethod
    def checkout_url(payment):
        return f"{payment['sandbox_url']}checkout/{payment['id']}"

    # --- completing, and the webhooks -----------------------------------------------------

    def complete(self, pid, outcome, received_amount=None):
        """Mark a pending payment, build its provider's webhook and send it. Returns
        ``(payment, delivery id)``; 404 / 409 as ``BadRequest``."""
        if outcome not in OUTCOMES:
            raise BadRequest({"error": "outcome must be 'succeeded' or 'failed'"})
        with self._lock:
            payment = self._payments.get(pid)
            if payment is None:
                raise BadRequest({"error": "no such payment"}, status=404)
            if payment["status"] != PENDING:
                raise BadRequest({"error": f"the payment is already {payment['status']}"}, status=409)
            payment["status"] = outcome
            payment["completed_at"] = iso(utcnow())
            if payment["provider"] == "bank_wire" and outcome == SUCCEEDED:
                payment["details"]["received_amount"] = str(received_amount or payment["amount"])
            snapshot = dict(payment, details=dict(payment["details"]))
            event_type, body = self.webhook_for(snapshot)
            payment["webhook"] = (event_type, body)
        delivery = self.deliveries.send(snapshot["provider"], pid, event_type, body, self.signer(snapshot))
        return dict(snapshot, webhook=(event_type, body)), delivery

    def webhook_for(self, payment):
        """``(event type, body bytes)`` of the notification ``payment``'s provider sends."""
        build = getattr(self, f"_{payment['provider']}_event")
        event_type, event = build(payment)
        indent = 2 if payment["provider"] == "stripe" else None  # Stripe sends pretty JSON
        return event_type, json.dumps(event, indent=indent).encode()

    def signer(self, payment):
        """``sign(body)`` → the signature headers of ``payment``'s provider, made afresh."""
        provider = payment["provider"]
        if provider == "stripe":
            def sign(body):
                ts = int(time.time())
                signature = hmac_hex(self.secret("STRIPE_WEBHOOK_SECRET"), f"{ts}.".encode() + body)
                return {"Stripe-Signature": f"t={ts},v1={signature}"}
        elif provider == "paypal":
            def sign(body):
                return self._paypal_headers(payment, json.loads(body))
        elif provider == "bitpay":
            def sign(body):
                return {"X-Accept-Version": "2.0.0"}  # BitPay signs no IPN
        elif provider == "coinbase":
            def sign(body):
                return {"X-CC-Webhook-Signature": hmac_hex(self.secret("COINBASE_WEBHOOK_SECRET"), body)}
        elif provider == "revolut":
            def sign(body):
                ts = int(time.time() * 1000)
                signature = hmac_hex(self.secret("REVOLUT_WEBHOOK_SECRET"), f"v1.{ts}.".encode() + body)
                return {"Revolut-Request-Timestamp": str(ts), "Revolut-Signature": f"v1={signature}"}
        else:
            def sign(body):
                ts = int(time.time())
                signature = hmac_hex(self.secret("BANK_WEBHOOK_SECRET"), f"{ts}.".encode() + body)
                return {"X-Bank-Timestamp": str(ts), "X-Bank-Signature": signature}
        return sign

    # --- Stripe ------------------------------------------------------------------------------

    def _stripe_refused(self, request):
        refusal = self.misbehave("stripe")
        if refusal is not None:
            return refusal
        key = bearer(request)
        if key is None and request.authorization and request.authorization.type == "basic":
            key = request.authorization.username  # Stripe also takes the key as Basic user
        if not same_secret(key, self.secret("STRIPE_SECRET_KEY")):
            return json_response({"error": {
                "type": "invalid_request_error", "message": "Invalid API Key provided.",
            }}, status=401, headers={"WWW-Authenticate": 'Bearer realm="Stripe"'})
        return None

    def stripe_create(self, request):
        refusal = self._stripe_refused(request)
        if refusal is not None:
            return refusal
        form = request.form
        missing = [f for f in (
            "mode", "success_url", "line_items[0][price_data][currency]",
            "line_items[0][price_data][unit_amount]", "line_items[0][quantity]",
        ) if not form.get(f)]
        if missing:
            return self._stripe_error(f"Missing required param: {missing[0]}.", missing[0])
        if form["mode"] != "payment":
            return self._stripe_error("Only mode=payment is played by the sandbox.", "mode")
        try:
            unit_amount = int(form["line_items[0][price_data][unit_amount]"])
            quantity = int(form["line_items[0][quantity]"])
        except ValueError:
            return self._stripe_error("Invalid integer.", "line_items[0][price_data][unit_amount]")
        if unit_amount <= 0 or quantity <= 0:
            return self._stripe_error("Amounts must be positive.", "line_items[0][price_data][unit_amount]")
        amount = (Decimal(unit_amount * quantity) / 100).quantize(CENT)
        metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent_metadata = {
            k[len("payment_intent_data[metadata]["):-1]: v for k, v in form.items()
            if k.startswith("payment_intent_data[metadata][")
        }
        payment, created = self._remember(
            request, "stripe", "cs_test_" + random_text(string.ascii_letters + string.digits, 58),
            amount, form["line_items[0][price_data][currency]"].upper(),
            form.get("client_reference_id") or metadata.get("reference"), form["success_url"],
            details={
                "cancel_url": form.get("cancel_url"), "metadata": metadata, "intent_metadata": intent_metadata,
                "client_reference_id": form.get("client_reference_id"),
                "payment_intent": "pi_" + random_text(string.ascii_letters + string.digits, 24),
                "created": int(time.time()),
            },
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return json_response(self._stripe_session(payment), status=200)

    @staticmethod
    def _stripe_error(message, param):
        error = {"type": "invalid_request_error", "message": message, "param": param}
        return json_response({"error": error}, status=400)

    def _stripe_session(self, payment):
        status, payment_status = {
            PENDING: ("open", "unpaid"), SUCCEEDED: ("complete", "paid"), FAILED: ("expired", "unpaid"),
        }[payment["status"]]
        details = payment["details"]
        return {
            "id": payment["id"], "object": "checkout.session", "mode": "payment", "livemode": False,
            "amount_total": cents(payment["amount"]), "amount_subtotal": cents(payment["amount"]),
            "currency": payment["currency"].lower(), "client_reference_id": details["client_reference_id"],
            "metadata": details["metadata"], "created": details["created"],
            "expires_at": details["created"] + 86400, "payment_intent": details["payment_intent"],
            "payment_status": payment_status, "status": status, "success_url": payment["return_url"],
            "cancel_url": details["cancel_url"], "url": self.checkout_url(payment),
        }

    def stripe_get(self, request, pid):
        refusal = self._stripe_refused(request)
        if refusal is not None:
            return refusal
        payment = self._get(pid, "stripe")
        if payment is None:
            return json_response({"error": {
                "type": "invalid_request_error", "code": "resource_missing", "message": "No such checkout.session",
            }}, status=404)
        return json_response(self._stripe_session(payment))

    def _stripe_event(self, payment):
        event_type = "checkout.session.completed" if payment["status"] == SUCCEEDED else "checkout.session.expired"
        return event_type, {
            "id": "evt_" + random_text(string.ascii_letters + string.digits, 24), "object": "event",
            "api_version": STRIPE_API_VERSION, "created": int(time.time()), "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type,
            "data": {"object": self._stripe_session(payment)},
        }

    # --- PayPal ------------------------------------------------------------------------------

    def paypal_token(self, request):
        refusal = self.misbehave("paypal")
        if refusal is not None:
            return refusal
        auth = request.authorization
        if (
            auth is None or auth.type != "basic"
            or not same_secret(auth.username, self.secret("PAYPAL_CLIENT_ID"))
            or not same_secret(auth.password, self.secret("PAYPAL_CLIENT_SECRET"))
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}, status=401,
                headers={"WWW-Authenticate": 'Basic realm="PayPal"'},
            )
        if request.form.get("grant_type") != "client_credentials":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, status=400,
            )
        token = "A21AA" + random_text(string.ascii_letters + string.digits + "-_", 60)
        with self._lock:
            now = time.monotonic()
            self._paypal_tokens = {t: e for t, e in self._paypal_tokens.items() if e > now}
            self._paypal_tokens[token] = now + PAYPAL_TOKEN_LIFETIME
        return json_response({
            "scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
            "token_type": "Bearer", "app_id": "APP-SANDBOX", "expires_in": PAYPAL_TOKEN_LIFETIME,
            "nonce": iso(utcnow()) + new_id()[:16],
        })

    def _paypal_refused(self, request):
        refusal = self.misbehave("paypal")
        if refusal is not None:
            return refusal
        token = bearer(request)
        with self._lock:
            expiry = self._paypal_tokens.get(token) if token else None
        if expiry is None or expiry < time.monotonic():
            return json_response({
                "name": "AUTHENTICATION_FAILURE", "message": "Authentication failed due to invalid authentication "
                "credentials or a missing Authorization header.", "links": [],
            }, status=401)
        return None

    def paypal_create(self, request):
        refusal = self._paypal_refused(request)
        if refusal is not None:
            return refusal
        body = read_json(request)
        units = body.get("purchase_units")
        unit = units[0] if isinstance(units, list) and len(units) == 1 and isinstance(units[0], dict) else None
        amount = unit.get("amount") if unit else None
        if body.get("intent") != "CAPTURE" or not isinstance(amount, dict):
            return json_response({
                "name": "INVALID_REQUEST", "message": "Request is not well-formed, syntactically incorrect, or "
                "violates schema.",
                "details": [{"issue": "MISSING_REQUIRED_PARAMETER", "field": "/purchase_units/0/amount"}],
            }, status=400)
        experience = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
        return_url = experience.get("return_url") or (body.get("application_context") or {}).get("return_url")
        payment, created = self._remember(
            request, "paypal", random_text(string.ascii_uppercase + string.digits, 17),
            parse_amount(amount.get("value")), parse_currency(amount.get("currency_code")),
            unit.get("custom_id") or unit.get("reference_id"), return_url,
            details={
                "custom_id": unit.get("custom_id"), "reference_id": unit.get("reference_id"),
                "capture_id": random_text(string.ascii_uppercase + string.digits, 17), "create_time": iso(utcnow()),
                "rel": "payer-action" if experience else "approve",
            },
            idempotency_key=request.headers.get("PayPal-Request-Id"),
        )
        return json_response(self._paypal_order(payment), status=201 if created else 200)

    def _paypal_order(self, payment):
        details = payment["details"]
        base = f"{payment['sandbox_url']}paypal/v2/checkout/orders/{payment['id']}"
        return {
            "id": payment["id"], "intent": "CAPTURE",
            "status": {PENDING: "PAYER_ACTION_REQUIRED", SUCCEEDED: "COMPLETED", FAILED: "VOIDED"}[payment["status"]],
            "create_time": details["create_time"],
            "purchase_units": [{
                "reference_id": details["reference_id"], "custom_id": details["custom_id"],
                "amount": {"currency_code": payment["currency"], "value": payment["amount"]},
            }],
            "links": [
                {"href": base, "rel": "self", "method": "GET"},
                {"href": self.checkout_url(payment), "rel": details["rel"], "method": "GET"},
            ],
        }

    def paypal_get(self, request, pid):
        refusal = self._paypal_refused(request)
        if refusal is not None:
            return refusal
        payment = self._get(pid, "paypal")
        if payment is None:
            return json_response(
                {"name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist."}, status=404,
            )
        return json_response(self._paypal_order(payment))

    def _paypal_event(self, payment):
        succeeded = payment["status"] == SUCCEEDED
        event_type = "PAYMENT.CAPTURE.COMPLETED" if succeeded else "PAYMENT.CAPTURE.DENIED"
        details = payment["details"]
        summary = f"Payment {'completed' if succeeded else 'denied'} for {payment['currency']} {payment['amount']}"
        events_url = f"{payment['sandbox_url']}paypal/v1/notifications/webhooks-events"
        capture_url = f"{payment['sandbox_url']}paypal/v2/payments/captures/{details['capture_id']}"
        return event_type, {
            "id": "WH-" + random_text(string.ascii_uppercase + string.digits, 17), "event_version": "1.0",
            "create_time": iso(utcnow()), "resource_type": "capture", "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "id": details["capture_id"], "status": "COMPLETED" if succeeded else "DECLINED",
                "amount": {"currency_code": payment["currency"], "value": payment["amount"]},
                "custom_id": details["custom_id"], "final_capture": True, "create_time": details["create_time"],
                "update_time": iso(utcnow()),
                "supplementary_data": {"related_ids": {"order_id": payment["id"]}},
                "links": [{"href": capture_url, "rel": "self", "method": "GET"}],
            },
            "links": [{"href": events_url, "rel": "self", "method": "GET"}],
        }

    def _paypal_signature(self, transmission_id, transmission_time, webhook_id, event):
        """PayPal signs ``<id>|<time>|<webhook id>|<CRC32 of the body>`` with its certificate;
        the sandbox with an HMAC of its own, over the event in a canonical form (so that the
        verify call checks the event's content, however it was re-encoded)."""
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(canonical)}".encode()
        return base64.b64encode(hmac.new(self._paypal_signing_key, message, hashlib.sha256).digest()).decode()

    def _paypal_headers(self, payment, event):
        transmission_id = str(uuid.uuid4())
        transmission_time = iso(utcnow().replace(microsecond=0))
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self._paypal_signature(
                transmission_id, transmission_time, self.secret("PAYPAL_WEBHOOK_ID"), event,
            ),
            "PAYPAL-CERT-URL": f"{payment['sandbox_url']}paypal/v1/notifications/certs/CERT-sandbox",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }

    def paypal_verify(self, request):
        refusal = self._paypal_refused(request)
        if refusal is not None:
            return refusal
        body = read_json(request)
        fields = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
        missing = [f for f in fields if not isinstance(body.get(f), str) or not body[f]]
        if missing or not isinstance(body.get("webhook_event"), dict):
            return json_response({
                "name": "VALIDATION_ERROR", "message": "Invalid request - see details",
                "details": [{"field": f, "issue": "MISSING_REQUIRED_PARAMETER"} for f in missing or ["webhook_event"]],
            }, status=400)
        verified = (
            body["auth_algo"] == "SHA256withRSA"
            and same_secret(body["webhook_id"], self.secret("PAYPAL_WEBHOOK_ID"))
            and same_secret(body["transmission_sig"], self._paypal_signature(
                body["transmission_id"], body["transmission_time"], body["webhook_id"], body["webhook_event"],
            ))
        )
        return json_response({"verification_status": "SUCCESS" if verified else "FAILURE"})

    # --- BitPay ------------------------------------------------------------------------------

    def _bitpay_refused(self, token):
        refusal = self.misbehave("bitpay")
        if refusal is not None:
            return refusal
        if not same_secret(token if isinstance(token, str) else None, self.secret("BITPAY_TOKEN")):
            return self._bitpay_error("Invalid token", 401)
        return None

    @staticmethod
    def _bitpay_error(message, status):
        return json_response({"status": "error", "code": "000000", "data": None, "error": message}, status=status)

    def bitpay_create(self, request):
        body = read_json(request)
        refusal = self._bitpay_refused(body.get("token"))
        if refusal is not None:
            return refusal
        if body.get("price") is None or not body.get("currency"):
            return self._bitpay_error("Price and currency required", 400)
        payment, _ = self._remember(
            request, "bitpay", random_text(string.ascii_letters + string.digits, 22),
            parse_amount(body["price"], "price"), parse_currency(body["currency"]), body.get("orderId"),
            body.get("redirectURL"),
            details={
                "itemDesc": body.get("itemDesc"), "notificationURL": body.get("notificationURL"),
                "invoiceTime": int(time.time() * 1000),
            },
        )
        return json_response({"facade": "pos/invoice", "data": self._bitpay_invoice(payment)})

    def _bitpay_invoice(self, payment):
        details = payment["details"]
        return {
            "id": payment["id"], "url": self.checkout_url(payment),
            "status": {PENDING: "new", SUCCEEDED: "confirmed", FAILED: "expired"}[payment["status"]],
            "price": float(payment["amount"]), "currency": payment["currency"], "orderId": payment["reference"],
            "itemDesc": details["itemDesc"], "invoiceTime": details["invoiceTime"],
            "expirationTime": details["invoiceTime"] + 15 * 60 * 1000, "currentTime": int(time.time() * 1000),
            "redirectURL": payment["return_url"], "exceptionStatus": False,
        }

    def bitpay_get(self, request, pid):
        refusal = self._bitpay_refused(request.args.get("token"))
        if refusal is not None:
            return refusal
        payment = self._get(pid, "bitpay")
        if payment is None:
            return self._bitpay_error("Object not found", 404)
        return json_response({"facade": "pos/invoice", "data": self._bitpay_invoice(payment)})

    def _bitpay_event(self, payment):
        event = {"code": 1005, "name": "invoice_confirmed"} if payment["status"] == SUCCEEDED else \
            {"code": 1004, "name": "invoice_expired"}
        return event["name"], {"event": event, "data": self._bitpay_invoice(payment)}

    # --- Coinbase Commerce -------------------------------------------------------------------

    def _coinbase_refused(self, request):
        refusal = self.misbehave("coinbase")
        if refusal is not None:
            return refusal
        if not same_secret(request.headers.get("X-CC-Api-Key"), self.secret("COINBASE_API_KEY")):
            return json_response({"error": {"type": "authorization_error", "message": "No such API key."}}, status=401)
        return None

    def coinbase_create(self, request):
        refusal = self._coinbase_refused(request)
        if refusal is not None:
            return refusal
        body = read_json(request)
        price = body.get("local_price")
        if body.get("pricing_type") != "fixed_price" or not isinstance(price, dict) or not body.get("name"):
            return json_response({"error": {"type": "invalid_request", "message": "name, pricing_type fixed_price "
                                            "and local_price are required"}}, status=400)
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        payment, _ = self._remember(
            request, "coinbase", str(uuid.uuid4()), parse_amount(price.get("amount")),
            parse_currency(price.get("currency")), metadata.get("reference"), body.get("redirect_url"),
            details={
                "code": random_text(string.ascii_uppercase + string.digits, 8), "name": body["name"],
                "description": body.get("description"), "metadata": metadata, "cancel_url": body.get("cancel_url"),
                "created_at": iso(utcnow()),
            },
        )
        return json_response({"data": self._coinbase_charge(payment)}, status=201)

    def _coinbase_charge(self, payment):
        details = payment["details"]
        timeline = [{"status": "NEW", "time": details["created_at"]}]
        if payment["status"] != PENDING:
            timeline.append({"status": "COMPLETED" if payment["status"] == SUCCEEDED else "EXPIRED",
                             "time": payment["completed_at"]})
        return {
            "id": payment["id"], "resource": "charge", "code": details["code"], "name": details["name"],
            "description": details["description"], "hosted_url": self.checkout_url(payment),
            "pricing_type": "fixed_price",
            "pricing": {"local": {"amount": payment["amount"], "currency": payment["currency"]}},
            "metadata": details["metadata"], "redirect_url": payment["return_url"],
            "cancel_url": details["cancel_url"], "created_at": details["created_at"],
            "expires_at": iso(datetime.fromisoformat(details["created_at"]) + timedelta(hours=1)),
            "timeline": timeline,
        }

    def coinbase_get(self, request, pid):
        refusal = self._coinbase_refused(request)
        if refusal is not None:
            return refusal
        payment = self._get(pid, "coinbase")
        if payment is None:
            found = self._find(lambda p: p["provider"] == "coinbase" and p["details"].get("code") == pid)
            payment = found[0] if found else None
        if payment is None:
            return json_response({"error": {"type": "not_found", "message": "Not found"}}, status=404)
        return json_response({"data": self._coinbase_charge(payment)})

    def _coinbase_event(self, payment):
        event_type = "charge:confirmed" if payment["status"] == SUCCEEDED else "charge:failed"
        return event_type, {
            "id": str(uuid.uuid4()), "scheduled_for": iso(utcnow()),
            "event": {
                "id": str(uuid.uuid4()), "resource": "event", "type": event_type,
                "api_version": COINBASE_API_VERSION, "created_at": iso(utcnow()),
                "data": self._coinbase_charge(payment),
            },
        }

    # --- Revolut -----------------------------------------------------------------------------

    def _revolut_refused(self, request):
        refusal = self.misbehave("revolut")
        if refusal is not None:
            return refusal
        if not same_secret(bearer(request), self.secret("REVOLUT_API_KEY")):
            return json_response({"code": "unauthenticated", "message": "Authentication failed"}, status=401)
        return None

    def revolut_create(self, request):
        refusal = self._revolut_refused(request)
        if refusal is not None:
            return refusal
        body = read_json(request)
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or not body.get("currency"):
            return json_response(
                {"code": "bad_request", "message": "amount (minor units) and currency are required"}, status=400,
            )
        order_data = body.get("merchant_order_data") if isinstance(body.get("merchant_order_data"), dict) else {}
        payment, _ = self._remember(
            request, "revolut", str(uuid.uuid4()), (Decimal(amount) / 100).quantize(CENT),
            parse_currency(body["currency"]), order_data.get("reference") or body.get("merchant_order_ext_ref"),
            body.get("redirect_url"),
            details={"token": str(uuid.uuid4()), "description": body.get("description"), "created_at": iso(utcnow())},
        )
        return json_response(self._revolut_order(payment), status=201)

    def _revolut_order(self, payment):
        details = payment["details"]
        state = {PENDING: "pending", SUCCEEDED: "completed", FAILED: "failed"}[payment["status"]]
        return {
            "id": payment["id"], "token": details["token"], "type": "payment", "state": state,
            "created_at": details["created_at"], "updated_at": payment["completed_at"] or details["created_at"],
            "amount": cents(payment["amount"]), "currency": payment["currency"],
            "outstanding_amount": 0 if state == "completed" else cents(payment["amount"]),
            "capture_mode": "automatic", "description": details["description"],
            "merchant_order_data": {"reference": payment["reference"]},
            "checkout_url": self.checkout_url(payment), "redirect_url": payment["return_url"],
        }

    def revolut_get(self, request, pid):
        refusal = self._revolut_refused(request)
        if refusal is not None:
            return refusal
        payment = self._get(pid, "revolut")
        if payment is None:
            return json_response({"code": "not_found", "message": "Order not found"}, status=404)
        return json_response(self._revolut_order(payment))

    def _revolut_event(self, payment):
        event_type = "ORDER_COMPLETED" if payment["status"] == SUCCEEDED else "ORDER_PAYMENT_FAILED"
        return event_type, {
            "event": event_type, "order_id": payment["id"], "merchant_order_ext_ref": payment["reference"],
        }

    # --- the bank ----------------------------------------------------------------------------

    def _bank_refused(self, request):
        refusal = self.misbehave("bank_wire")
        if refusal is not None:
            return refusal
        if not same_secret(bearer(request), self.secret("BANK_API_KEY")):
            return json_response({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    @staticmethod
    def _normalized(reference):
        return re.sub(r"\s+", "", str(reference or "")).upper()

    def bank_create(self, request):
        refusal = self._bank_refused(request)
        if refusal is not None:
            return refusal
        body = read_json(request)
        reference = self._normalized(body.get("reference"))
        if not re.fullmatch(r"[A-Z0-9-]{6,35}", reference):
            raise BadRequest({"error": "reference must be 6 to 35 letters, digits or hyphens"})
        amount, currency = parse_amount(body.get("amount")), parse_currency(body.get("currency"))
        with self._lock:  # one pending expectation per payment reference
            taken = any(
                p["provider"] == "bank_wire" and p["details"]["transfer_reference"] == reference
                for p in self._payments.values()
            )
        if taken:
            return json_response({"error": "reference already in use"}, status=409)
        payment, _ = self._remember(
            request, "bank_wire", "bw_" + new_id()[:20], amount, currency, body.get("external_id"), None,
            details={"transfer_reference": reference},
        )
        return json_response(self._bank_transfer(payment), status=201)

    def _bank_transfer(self, payment):
        return {
            "id": payment["id"], "reference": payment["details"]["transfer_reference"],
            "external_id": payment["reference"], "amount": payment["amount"], "currency": payment["currency"],
            "iban": self.bank_account["BANK_IBAN"], "bic": self.bank_account["BANK_BIC"],
            "beneficiary": self.bank_account["BANK_BENEFICIARY"],
            "status": {PENDING: "expected", SUCCEEDED: "received", FAILED: "expired"}[payment["status"]],
            "received_amount": payment["details"].get("received_amount"), "created_at": payment["created_at"],
        }

    def bank_get(self, request, pid):
        refusal = self._bank_refused(request)
        if refusal is not None:
            return refusal
        payment = self._get(pid, "bank_wire")
        if payment is None:
            return json_response({"error": "not found"}, status=404)
        return json_response(self._bank_transfer(payment))

    def bank_incoming(self, request):
        """The payer's bank sends money with a reference: match it, notify the merchant."""
        body = read_json(request)
        reference = self._normalized(body.get("reference"))
        amount, currency = parse_amount(body.get("amount")), parse_currency(body.get("currency"))
        found = self._find(lambda p: p["provider"] == "bank_wire" and p["details"]["transfer_reference"] == reference)
        if not found:
            raise BadRequest({"error": "no expected transfer has this reference"}, status=404)
        if currency != found[0]["currency"]:
            raise BadRequest({"error": f"the transfer expected is in {found[0]['currency']}"}, status=422)
        payment, delivery = self.complete(found[0]["id"], SUCCEEDED, received_amount=amount)
        return json_response({"payment": self.public(payment), "delivery": delivery}, status=202)

    def _bank_wire_event(self, payment):
        received = payment["status"] == SUCCEEDED
        event_type = "transfer.received" if received else "transfer.expired"
        return event_type, {
            "id": "evt_" + new_id(), "type": event_type, "created_at": iso(utcnow()),
            "data": {
                "transfer_id": payment["id"], "reference": payment["details"]["transfer_reference"],
                "external_id": payment["reference"],
                "amount": payment["details"]["received_amount"] if received else payment["amount"],
                "currency": payment["currency"], "status": "received" if received else "expired",
            },
        }

    # --- for people and tests ------------------------------------------------------------

    def list_payments(self, request):
        provider, reference = request.args.get("provider"), request.args.get("reference")
        found = self._find(lambda p: (provider is None or p["provider"] == provider)
                           and (reference is None or p["reference"] == reference))
        return json_response([self.public(p) for p in found])

    def show_payment(self, request, pid):
        payment = self._get(pid)
        if payment is None:
            raise BadRequest({"error": "no such payment"}, status=404)
        return json_response(self.public(payment))

    def complete_payment(self, request, pid):
        body = read_json(request)
        payment, delivery = self.complete(pid, body.get("outcome"))
        return json_response({"payment": self.public(payment), "delivery": delivery}, status=202)

    def redeliver_payment(self, request, pid):
        payment = self._get(pid)
        if payment is None:
            raise BadRequest({"error": "no such payment"}, status=404)
        if payment["webhook"] is None:
            raise BadRequest({"error": "the payment is pending: complete it first"}, status=409)
        event_type, body = payment["webhook"]
        delivery = self.deliveries.send(payment["provider"], pid, event_type, body, self.signer(payment))
        return json_response({"payment": self.public(payment), "delivery": delivery}, status=202)

    def list_webhooks(self, request):
        return json_response(self.deliveries.list(
            payment_id=request.args.get("payment_id"), provider=request.args.get("provider"),
        ))

    def checkout_page(self, request, pid):
        payment = self._get(pid)
        if payment is None or payment["provider"] == "bank_wire":
            raise BadRequest({"error": "no such checkout"}, status=404)
        title = f"{payment['provider']}: {payment['currency']} {payment['amount']}"
        if payment["status"] == PENDING:
            action = html.escape(f"/checkout/{pid}")
            form = (f'<form method="post" action="{action}">'
                    '<button name="outcome" value="succeeded">Pay</button> '
                    '<button name="outcome" value="failed">Fail</button></form>')
        else:
            form = f"<p>This payment is {payment['status']}.</p>"
        page = (f"<!doctype html><title>{html.escape(title)}</title><h1>Payments sandbox</h1>"
                f"<p>{html.escape(title)} (reference {html.escape(str(payment['reference']))})</p>{form}")
        return Response(page, mimetype="text/html")

    def checkout_submit(self, request, pid):
        payment, _ = self.complete(pid, request.form.get("outcome"))
        if payment["return_url"]:
            return Response(status=303, headers={"Location": payment["return_url"]})
        return Response(f"<!doctype html><p>Payment {payment['status']}.</p>", mimetype="text/html")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--webhook-base", default=DEFAULT_WEBHOOK_BASE,
                        help="webhooks go to <webhook-base>/<provider>")
    parser.add_argument("--retry-delays", default=",".join(f"{d:g}" for d in DEFAULT_RETRY_DELAYS),
                        help="seconds between delivery attempts, comma-separated")
    parser.add_argument("--attempt-timeout", type=float, default=DEFAULT_ATTEMPT_TIMEOUT,
                        help="seconds to wait for the receiver's answer to one attempt")
    args = parser.parse_args(argv)
    delays = tuple(float(d) for d in args.retry_delays.split(",") if d.strip())
    logging.getLogger("werkzeug").addFilter(_MaskTokens())
    deliveries = Deliveries(args.webhook_base, delays, args.attempt_timeout)
    app = PaymentsSandbox(
        {name: setting(name, default) for name, default in CREDENTIALS.items()},
        {name: setting(name, default) for name, default in BANK_ACCOUNT.items()},
        deliveries,
    )
    serve(app, args.host, args.port, lambda port: (
        f"payments sandbox listening on http://{args.host}:{port} "
        f"(providers at /stripe /paypal /bitpay /coinbase /revolut /bank; payments /payments; "
        f"webhooks to {deliveries.webhook_base}/<provider>, log /webhooks; control /control)"
    ), also_stop=(deliveries.stop,))


if __name__ == "__main__":
    main()
