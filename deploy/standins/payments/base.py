"""What the six providers of the payments sandbox share: the payment store, the webhook
deliveries, the sandbox app with its endpoints for people and tests, the ``Provider`` base
class and the small parsing and signing helpers.

For people and tests: ``GET /payments[?provider=&reference=]``, ``GET /payments/<id>``,
``POST /payments/<id>/complete`` ``{"outcome": "succeeded"|"failed"}`` (202; the webhook goes
to ``<webhook-base>/<provider>`` from a background thread, retried with back-off on a
non-2xx answer or a connection error), ``POST /payments/<id>/redeliver`` (the same body
again), ``GET /webhooks[?payment_id=&provider=]`` (each delivery and the status of each
attempt), ``GET /checkout/<id>`` (a page to pay or fail by hand: where every ``redirect_url``
leads), failure modes ``GET/POST /control`` (deploy/standins/base.py). Nothing here logs a
credential or a signature.
"""

import functools
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import requests
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from deploy.standins.base import BadRequest, StandinApp, json_response, new_id, read_json

# Pauses between delivery attempts: 6 attempts over about 30 s.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
DEFAULT_ATTEMPT_TIMEOUT = 5.0
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
OUTCOMES = (SUCCEEDED, FAILED)
CENT = Decimal("0.01")


# --- small helpers -------------------------------------------------------------------------

def utcnow():
    return datetime.now(timezone.utc)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def random_text(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


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
    """A three-letter currency code in capitals, else 400."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise BadRequest({"error": "currency must be a three-letter code"})
    return value.upper()


def cents(amount):
    return int(Decimal(amount) * 100)


def from_cents(minor_units):
    return (Decimal(minor_units) / 100).quantize(CENT)


def bearer(request):
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def checkout_url(payment):
    """The sandbox's own checkout page of a payment: where every redirect URL leads."""
    return f"{payment['sandbox_url']}checkout/{payment['id']}"


# --- signing -------------------------------------------------------------------------------

def hmac_hex(secret, message):
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def timestamped_hmac(secret, body, prefix="", per_second=1):
    """``(timestamp, hex HMAC-SHA256 of "<prefix><timestamp>.<body>")``, the timestamp in
    units of ``1/per_second`` s: the scheme Stripe, Revolut and the bank share."""
    timestamp = int(time.time() * per_second)
    return timestamp, hmac_hex(secret, f"{prefix}{timestamp}.".encode() + body)


class MaskTokens(logging.Filter):
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


# --- one provider ------------------------------------------------------------------------------

def authenticated(handler):
    """Run a provider's ``handler(request, …)`` only past its failure mode and credentials."""
    @functools.wraps(handler)
    def guarded(self, request, **values):
        refusal = self.refused(request)
        return refusal if refusal is not None else handler(self, request, **values)
    return guarded


class Provider:
    """One provider the sandbox plays, in the shape of its real API.

    A subclass sets ``name``, ``defaults`` (setting name → dev default) and ``routes``
    (``(path, HTTP method, handler method name)``), and says how a caller is refused
    (``unauthenticated``), what its webhook says (``event``) and how it is signed (``sign``).
    """

    name = None
    defaults = {}
    routes = ()
    webhook_indent = None  # of the webhook's JSON
    has_checkout_page = True

    def __init__(self, sandbox, settings):
        self.sandbox = sandbox
        self.settings = dict(settings)

    def rules(self):
        return [
            Rule(path, methods=[method], endpoint=f"{self.name}.{handler}") for path, method, handler in self.routes
        ]

    def secret(self, name):
        return self.settings[name]

    def refused(self, presented):
        """The failure mode's answer, or the provider's own 401 unless ``presented`` (the
        request, or the credential it carried) is accepted; None to go on."""
        refusal = self.sandbox.misbehave(self.name)
        return refusal if refusal is not None else self.unauthenticated(presented)

    def unauthenticated(self, presented):
        """The provider's 401 response for credentials it does not accept, else None."""
        raise NotImplementedError

    def event(self, payment):
        """``(event type, event)`` of the webhook for a completed payment."""
        raise NotImplementedError

    def sign(self, payment, body):
        """The signature headers of a webhook ``body`` (bytes), made afresh."""
        raise NotImplementedError

    def public_fields(self, payment):
        """What ``/payments`` shows of a payment beyond what every provider's shows."""
        return {"checkout_url": checkout_url(payment)}

    def settle(self, payment, outcome, received_amount):
        """Record what completing ``payment`` means to the provider (in the store's lock)."""

    # The store, for this provider's payments only.
    def remember(self, request, pid, amount, currency, reference, return_url, details=None, idempotency_key=None):
        return self.sandbox.remember(request, self.name, pid, amount, currency, reference, return_url,
                                     details=details, idempotency_key=idempotency_key)

    def get(self, pid):
        return self.sandbox.get(pid, self.name)

    def find(self, predicate):
        return self.sandbox.find(lambda p: p["provider"] == self.name and predicate(p))


# --- the sandbox -----------------------------------------------------------------------------

class PaymentsSandbox(StandinApp):
    """The sandbox app: the payment store, the provider routes (endpoint
    ``<provider>.<handler>``) and the endpoints for people and tests."""

    name = "payments"

    def __init__(self, providers, settings, deliveries):
        """``providers``: the ``Provider`` classes, in the order ``/control`` lists them;
        ``settings``: every setting they name, by name."""
        self.by_name = {cls.name: cls(self, {key: settings[key] for key in cls.defaults}) for cls in providers}
        self.providers = tuple(self.by_name)
        self.deliveries = deliveries
        self._lock = threading.Lock()
        self._payments = {}  # id → payment record
        self._idempotency = {}  # (provider, key) → payment id
        super().__init__()

    def provider_rules(self):
        rules = [rule for provider in self.by_name.values() for rule in provider.rules()]
        return rules + [
            Rule("/payments", methods=["GET"], endpoint="list_payments"),
            Rule("/payments/<pid>", methods=["GET"], endpoint="show_payment"),
            Rule("/payments/<pid>/complete", methods=["POST"], endpoint="complete_payment"),
            Rule("/payments/<pid>/redeliver", methods=["POST"], endpoint="redeliver_payment"),
            Rule("/webhooks", methods=["GET"], endpoint="list_webhooks"),
            Rule("/checkout/<pid>", methods=["GET"], endpoint="checkout_page"),
            Rule("/checkout/<pid>", methods=["POST"], endpoint="checkout_submit"),
        ]

    def __getattr__(self, endpoint):
        # StandinApp calls the endpoint by name: "<provider>.<handler>" is a provider's method.
        name, dot, handler = endpoint.partition(".")
        provider = self.__dict__.get("by_name", {}).get(name) if dot else None
        if provider is None:
            raise AttributeError(endpoint)
        return getattr(provider, handler)

    # --- the store ------------------------------------------------------------------------

    def remember(self, request, provider, pid, amount, currency, reference, return_url,
                 details=None, idempotency_key=None):
        """Store a new pending payment (or, for a known idempotency key, return the first):
        ``(payment, created)``."""
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

    def get(self, pid, provider=None):
        """A copy of the payment (of ``provider`` if given), or None."""
        with self._lock:
            payment = self._payments.get(pid)
            payment = dict(payment, details=dict(payment["details"])) if payment else None
        if payment is None or (provider is not None and payment["provider"] != provider):
            return None
        return payment

    def find(self, predicate):
        """Copies of the payments ``predicate`` accepts."""
        with self._lock:
            return [dict(p, details=dict(p["details"])) for p in self._payments.values() if predicate(p)]

    def public(self, payment):
        """What ``/payments`` shows of a payment."""
        view = {key: payment[key] for key in (
            "id", "provider", "amount", "currency", "reference", "status", "created_at", "completed_at",
            "return_url",
        )}
        view.update(self.by_name[payment["provider"]].public_fields(payment))
        view["webhook_event"] = payment["webhook"][0] if payment["webhook"] else None
        return view

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
            self.by_name[payment["provider"]].settle(payment, outcome, received_amount)
            snapshot = dict(payment, details=dict(payment["details"]))
            event_type, body = self.webhook_for(snapshot)
            payment["webhook"] = (event_type, body)
        delivery = self.deliveries.send(snapshot["provider"], pid, event_type, body, self.signer(snapshot))
        return dict(snapshot, webhook=(event_type, body)), delivery

    def webhook_for(self, payment):
        """``(event type, body bytes)`` of the notification ``payment``'s provider sends."""
        provider = self.by_name[payment["provider"]]
        event_type, event = provider.event(payment)
        return event_type, json.dumps(event, indent=provider.webhook_indent).encode()

    def signer(self, payment):
        """``sign(body)`` → the signature headers of ``payment``'s provider, made afresh."""
        return functools.partial(self.by_name[payment["provider"]].sign, payment)

    # --- for people and tests ------------------------------------------------------------

    def list_payments(self, request):
        provider, reference = request.args.get("provider"), request.args.get("reference")
        found = self.find(lambda p: (provider is None or p["provider"] == provider)
                          and (reference is None or p["reference"] == reference))
        return json_response([self.public(p) for p in found])

    def show_payment(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            raise BadRequest({"error": "no such payment"}, status=404)
        return json_response(self.public(payment))

    def complete_payment(self, request, pid):
        body = read_json(request)
        payment, delivery = self.complete(pid, body.get("outcome"))
        return json_response({"payment": self.public(payment), "delivery": delivery}, status=202)

    def redeliver_payment(self, request, pid):
        payment = self.get(pid)
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
        payment = self.get(pid)
        if payment is None or not self.by_name[payment["provider"]].has_checkout_page:
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
