"""Stripe: a Checkout Session per top-up, and Stripe's signed webhook events.

- Create: ``POST <base>/v1/checkout/sessions``, form-encoded (``mode=payment``,
  ``client_reference_id``, one line item with ``price_data`` in minor units,
  ``metadata[reference]``, ``success_url``/``cancel_url``), ``Authorization: Bearer <secret
  key>``, an ``Idempotency-Key`` derived from the reference (creating twice for the same
  top-up gives the same session, so a caller may safely try again) → the session's ``id``
  (``cs_…``) and ``url``.
- Webhook: header ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`` where each
  ``v1`` is HMAC-SHA256 of ``"<t>.<raw body>"`` with the endpoint's signing secret
  (``whsec_…``; several ``v1`` while a secret rolls); ``t`` within 300 s of now.
  Events: ``checkout.session.completed`` (paid) and ``…async_payment_succeeded`` →
  succeeded; ``checkout.session.expired``, ``…async_payment_failed`` and
  ``payment_intent.payment_failed`` → failed. A ``completed`` session whose payment is still
  pending (a delayed method) and every other type → ``None``.
- Retrieve: ``GET <base>/v1/checkout/sessions/<id>`` → the session: ``status: complete`` with
  ``payment_status`` ``paid`` (or ``no_payment_required``) → succeeded, ``status: expired``
  → failed, anything else (``open``; ``complete`` but ``unpaid``: a delayed method still
  settling) → ``None``.

Note: ``payment_intent.payment_failed`` names the PaymentIntent (``pi_…``), not the session:
its notice carries that id and our reference from the intent's metadata (set at creation).
Within Checkout a failed attempt lets the customer try again, so only
``checkout.session.expired`` is final for the session. The session alone does not tell a
delayed payment that failed (``async_payment_failed``) from one still settling: retrieved,
both are ``complete``/``unpaid`` → ``None``.
"""

from services.billing.adapters import FAILED, SUCCEEDED, PaymentNotice, WebhookRejected
from services.billing.adapters._calls import (
    DEFAULT_TOLERANCE_SECONDS,
    NOT_FOUND,
    PaymentProvider,
    any_matches,
    check_fresh,
    check_payment,
    field,
    from_minor,
    hmac_hex,
    load_event,
    lower_headers,
    member,
    notice_currency,
    optional_text,
    parse_int,
    to_minor,
)

API_VERSION = "2024-06-20"
PRODUCT_NAME = "Balance top-up"

_SESSION_EVENTS = {
    "checkout.session.completed": SUCCEEDED,
    "checkout.session.async_payment_succeeded": SUCCEEDED,
    "checkout.session.expired": FAILED,
    "checkout.session.async_payment_failed": FAILED,
}
_INTENT_EVENTS = {"payment_intent.payment_failed": FAILED}
_PAID = ("paid", "no_payment_required")


class StripePayments(PaymentProvider):
    name = "stripe"

    def __init__(self, base_url, secret_key, webhook_secret, timeout, observe=None,
                 tolerance=DEFAULT_TOLERANCE_SECONDS):
        super().__init__(base_url, timeout, observe)
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self.tolerance = tolerance

    def _headers(self):
        return {"Authorization": f"Bearer {self._secret_key}", "Stripe-Version": API_VERSION}

    def create_payment(self, reference, amount, currency, return_url):
        """A Checkout Session: ``{"provider_payment_id": "cs_…", "redirect_url": url}``."""
        amount, currency, reference = check_payment(amount, currency, reference)
        form = {
            "mode": "payment",
            "client_reference_id": reference,
            "success_url": return_url,
            "cancel_url": return_url,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": currency.lower(),
            "line_items[0][price_data][unit_amount]": str(to_minor(amount)),
            "line_items[0][price_data][product_data][name]": PRODUCT_NAME,
            "metadata[reference]": reference,
            "payment_intent_data[metadata][reference]": reference,
        }
        headers = {**self._headers(), "Idempotency-Key": f"topup-{reference}"}

        def attempt():
            _, session = self._call("POST", "/v1/checkout/sessions", data=form, headers=headers)
            return {
                "provider_payment_id": str(field(self.name, session, "id")),
                "redirect_url": str(field(self.name, session, "url")),
            }

        return self._observed(attempt)

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        signed_at, signatures = self._signature_header(lower_headers(headers).get("stripe-signature"))
        expected = hmac_hex(self._webhook_secret, f"{signed_at}.".encode() + raw_body)
        if not any_matches(expected, signatures):
            raise self._rejected("bad_signature", "no v1 signature matches")
        check_fresh(self.name, signed_at, now, self.tolerance)

        event = load_event(self.name, raw_body)
        kind = member(self.name, event, "type")
        obj = member(self.name, event, "data", "object", kind=dict)
        if kind in _SESSION_EVENTS:
            if kind == "checkout.session.completed" and obj.get("payment_status") not in _PAID:
                return None  # a delayed method: async_payment_succeeded/failed will tell
            return self._session_notice(obj, _SESSION_EVENTS[kind])
        if kind in _INTENT_EVENTS:
            return self._notice(obj, _INTENT_EVENTS[kind], "amount", (obj.get("metadata") or {}).get("reference"))
        return None

    def retrieve_payment(self, provider_payment_id):
        """The Checkout Session as Stripe has it now: a notice once final, else ``None``."""

        def get(session_id):
            path = f"/v1/checkout/sessions/{session_id}"
            return self._call("GET", path, tolerate=NOT_FOUND, headers=self._headers())

        def read(session):
            state = member(self.name, session, "status")
            if state == "expired":
                return self._session_notice(session, FAILED)
            if state == "complete" and session.get("payment_status") in _PAID:
                return self._session_notice(session, SUCCEEDED)
            return None

        return self._retrieve(provider_payment_id, get, read)

    def _session_notice(self, session, status):
        reference = session.get("client_reference_id") or (session.get("metadata") or {}).get("reference")
        return self._notice(session, status, "amount_total", reference)

    def _notice(self, obj, status, amount_key, reference):
        """The notice of a session or a PaymentIntent (``obj``), else ``malformed``."""
        try:
            amount = from_minor(member(self.name, obj, amount_key, kind=int))
        except ValueError:
            raise self._rejected("malformed", f"{amount_key} is not a whole number of cents") from None
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=member(self.name, obj, "id"),
            status=status,
            amount=amount,
            currency=notice_currency(self.name, obj.get("currency")),
            reference=optional_text(reference),
        )

    def _signature_header(self, header):
        """``(t, [v1, …])`` from a ``Stripe-Signature`` header, else ``bad_signature``."""
        if not header:
            raise self._rejected("bad_signature", "no Stripe-Signature header")
        timestamp, signatures = None, []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t" and timestamp is None:
                timestamp = value
            elif key == "v1" and value:
                signatures.append(value)
        if timestamp is None or not signatures:
            raise WebhookRejected("bad_signature", self.name, "Stripe-Signature lacks t or v1")
        return parse_int(self.name, timestamp, "t"), signatures
