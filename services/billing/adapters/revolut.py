"""Revolut Merchant (Revolut Pay): an order per top-up, and signed webhooks.

- Create: ``POST <base>/api/orders``, JSON ``{"amount": <minor units>, "currency",
  "description", "merchant_order_data": {"reference"}, "redirect_url"}``, headers
  ``Authorization: Bearer <secret key>`` and ``Revolut-Api-Version`` → the order (``id``,
  ``token``, ``state: pending``, ``checkout_url``, …).
- Webhook: headers ``Revolut-Request-Timestamp`` (Unix milliseconds) and
  ``Revolut-Signature: v1=<hex>[,v1=<hex>…]``, each HMAC-SHA256 of
  ``"v1.<timestamp>.<raw body>"`` with the webhook's signing secret; the timestamp within
  300 s of now. The body is small — ``{"event", "order_id", "merchant_order_ext_ref"}``,
  no amount — so the order is then fetched (``GET <base>/api/orders/<id>``) for its amount,
  currency and reference. ``ORDER_COMPLETED`` → succeeded (only if the fetched order is
  ``completed``, else ``WebhookRejected("unverified")``); ``ORDER_PAYMENT_FAILED``,
  ``ORDER_PAYMENT_DECLINED``, ``ORDER_CANCELLED`` → failed; other events → ``None``.
- Retrieve: the same ``GET <base>/api/orders/<id>``; its ``state`` decides: ``completed`` →
  succeeded, ``cancelled`` / ``failed`` → failed, anything else (``pending``,
  ``processing``, ``authorised``) → ``None``.
"""

from services.billing.adapters import FAILED, SUCCEEDED, PaymentNotice
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
    is_payment_id,
    load_event,
    lower_headers,
    member,
    notice_currency,
    optional_text,
    parse_int,
    to_minor,
)

API_VERSION = "2024-09-01"
DESCRIPTION = "Balance top-up"
_EVENTS = {
    "ORDER_COMPLETED": SUCCEEDED,
    "ORDER_PAYMENT_FAILED": FAILED,
    "ORDER_PAYMENT_DECLINED": FAILED,
    "ORDER_CANCELLED": FAILED,
}
_STATES = {"completed": SUCCEEDED, "cancelled": FAILED, "failed": FAILED}


class RevolutPayments(PaymentProvider):
    name = "revolut"

    def __init__(self, base_url, api_key, webhook_secret, timeout, observe=None,
                 tolerance=DEFAULT_TOLERANCE_SECONDS):
        super().__init__(base_url, timeout, observe)
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self.tolerance = tolerance

    def _headers(self):
        return {"Authorization": f"Bearer {self._api_key}", "Revolut-Api-Version": API_VERSION}

    def create_payment(self, reference, amount, currency, return_url):
        """An order: ``{"provider_payment_id": <order id>, "redirect_url": <checkout_url>}``."""
        amount, currency, reference = check_payment(amount, currency, reference)
        order = {
            "amount": to_minor(amount),
            "currency": currency,
            "description": DESCRIPTION,
            "merchant_order_data": {"reference": reference},
            "redirect_url": return_url,
        }

        def attempt():
            _, answer = self._call("POST", "/api/orders", json=order, headers=self._headers())
            return {
                "provider_payment_id": str(field(self.name, answer, "id")),
                "redirect_url": str(field(self.name, answer, "checkout_url")),
            }

        return self._observed(attempt)

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        lowered = lower_headers(headers)
        timestamp_text = lowered.get("revolut-request-timestamp")
        signature_header = lowered.get("revolut-signature")
        if not timestamp_text or not signature_header:
            raise self._rejected("bad_signature", "no Revolut-Signature or Revolut-Request-Timestamp header")
        timestamp_ms = parse_int(self.name, timestamp_text.strip(), "Revolut-Request-Timestamp")
        signatures = [
            value for key, _, value in (item.strip().partition("=") for item in signature_header.split(","))
            if key == "v1" and value
        ]
        expected = hmac_hex(self._webhook_secret, f"v1.{timestamp_ms}.".encode() + raw_body)
        if not signatures or not any_matches(expected, signatures):
            raise self._rejected("bad_signature", "no v1 signature matches")
        check_fresh(self.name, timestamp_ms / 1000, now, self.tolerance)

        event = load_event(self.name, raw_body)
        status = _EVENTS.get(member(self.name, event, "event"))
        if status is None:
            return None
        order_id = member(self.name, event, "order_id")
        if not is_payment_id(order_id):
            raise self._rejected("malformed", "no valid order_id")
        order = self._fetch(order_id)
        if status == SUCCEEDED and order.get("state") != "completed":
            raise self._rejected("unverified", "the order is not completed at Revolut")
        return self._order_notice(order, status, event.get("merchant_order_ext_ref"))

    def retrieve_payment(self, provider_payment_id):
        """The order as Revolut has it now: a notice once final, else ``None``."""

        def read(order):
            status = _STATES.get(member(self.name, order, "state"))
            return None if status is None else self._order_notice(order, status)

        return self._retrieve(provider_payment_id, self._get_order, read)

    def _order_notice(self, order, status, fallback_reference=None):
        """An order's notice (its reference, else ``fallback_reference``), else ``malformed``."""
        try:
            amount = from_minor(order.get("amount"))
        except ValueError:
            raise self._rejected("malformed", "the order's amount is not a whole number of minor units") from None
        reference = (order.get("merchant_order_data") or {}).get("reference") or fallback_reference
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=member(self.name, order, "id"),
            status=status,
            amount=amount,
            currency=notice_currency(self.name, order.get("currency")),
            reference=optional_text(reference),
        )

    def _get_order(self, order_id):
        """``(HTTP status, answer)`` of Revolut's GET of the order (``NOT_FOUND`` tolerated)."""
        return self._call("GET", f"/api/orders/{order_id}", tolerate=NOT_FOUND, headers=self._headers())

    def _fetch(self, order_id):
        status, order = self._observed(lambda: self._get_order(order_id))
        if status != 200 or order.get("id") != order_id:
            raise self._rejected("unverified", "Revolut does not know this order")
        return order
