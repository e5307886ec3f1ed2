"""PayPal: an Orders v2 order per top-up, and webhooks that PayPal itself confirms.

- Token: ``POST <base>/v1/oauth2/token``, form ``grant_type=client_credentials``, HTTP Basic
  ``client id:secret`` → ``access_token`` and ``expires_in``; kept until a minute before it
  expires (or until an API call answers 401, then fetched once more).
- Create: ``POST <base>/v2/checkout/orders``, JSON ``{"intent": "CAPTURE", "purchase_units":
  [{"reference_id", "custom_id": <reference>, "amount": {"currency_code", "value"}}],
  "payment_source": {"paypal": {"experience_context": {"return_url", "cancel_url", …}}}}``,
  ``Authorization: Bearer <token>``, ``PayPal-Request-Id`` derived from the reference
  (PayPal's idempotency key) → the order ``id`` and its ``payer-action`` (or ``approve``)
  link, where the customer is sent.
- Webhook: PayPal signs with a certificate (headers ``PAYPAL-TRANSMISSION-ID``, ``-TIME``,
  ``-SIG``, ``-CERT-URL``, ``PAYPAL-AUTH-ALGO``); we have PayPal check it:
  ``POST <base>/v1/notifications/verify-webhook-signature`` with those headers, our
  ``webhook_id`` and the event → ``verification_status == "SUCCESS"``, else
  ``WebhookRejected("unverified")``. The event goes into that request byte for byte as it
  arrived: PayPal checks a checksum of the body, which a re-encoded copy could break.
  Events: ``PAYMENT.CAPTURE.COMPLETED`` → succeeded, ``PAYMENT.CAPTURE.DENIED`` /
  ``…DECLINED`` → failed, every other type → ``None``. The notice's id is the order's
  (``resource.supplementary_data.related_ids.order_id``), the reference its ``custom_id``.
- Retrieve: ``GET <base>/v2/checkout/orders/<id>`` (the bearer token) → the order. Its
  capture (``purchase_units[0].payments.captures``, the latest), once there, decides:
  ``COMPLETED`` → succeeded, ``DECLINED`` / ``FAILED`` → failed, anything else (``PENDING``,
  refunds) → ``None``. Without a capture the order's ``status`` does: ``COMPLETED`` →
  succeeded, ``VOIDED`` → failed, anything else (``CREATED``, ``PAYER_ACTION_REQUIRED``,
  ``APPROVED``…) → ``None``. The amount and ``custom_id`` are the capture's, else the
  purchase unit's.
"""

import json
import threading
import time

from services.billing.adapters import (
    FAILED,
    SUCCEEDED,
    PaymentNotice,
    PaymentProviderError,
)
from services.billing.adapters._calls import (
    NOT_FOUND,
    PaymentProvider,
    check_payment,
    field,
    load_event,
    lower_headers,
    member,
    money_text,
    notice_amount,
    notice_currency,
    optional_text,
)

DESCRIPTION = "Balance top-up"
TOKEN_MARGIN_SECONDS = 60
TRANSMISSION_HEADERS = {
    # verify-webhook-signature field ← header
    "transmission_id": "paypal-transmission-id",
    "transmission_time": "paypal-transmission-time",
    "transmission_sig": "paypal-transmission-sig",
    "cert_url": "paypal-cert-url",
    "auth_algo": "paypal-auth-algo",
}
_EVENTS = {
    "PAYMENT.CAPTURE.COMPLETED": SUCCEEDED,
    "PAYMENT.CAPTURE.DENIED": FAILED,
    "PAYMENT.CAPTURE.DECLINED": FAILED,
}
_CAPTURE_STATUSES = {"COMPLETED": SUCCEEDED, "DECLINED": FAILED, "FAILED": FAILED}
_ORDER_STATUSES = {"COMPLETED": SUCCEEDED, "VOIDED": FAILED}


class PayPalPayments(PaymentProvider):
    name = "paypal"

    def __init__(self, base_url, client_id, client_secret, webhook_id, timeout, observe=None):
        super().__init__(base_url, timeout, observe)
        self._client_id = client_id
        self._client_secret = client_secret
        self.webhook_id = webhook_id  # an identifier, not a secret
        self._token = None  # (access token, monotonic expiry)
        self._token_lock = threading.Lock()

    # --- the OAuth token ---------------------------------------------------------------

    def _access_token(self, renew=False):
        with self._token_lock:
            if not renew and self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            _, answer = self._call(
                "POST", "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret), headers={"Accept": "application/json"},
            )
            token = str(field(self.name, answer, "access_token"))
            try:
                lifetime = float(answer.get("expires_in", 0))
            except (TypeError, ValueError):
                lifetime = 0.0
            self._token = (token, time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 0.0))
            return token

    def _authorized(self, method, path, tolerate=(), headers=None, **kwargs):
        """A call with the bearer token; a 401 (token revoked or expired early) renews the
        token and tries once more."""
        def once(renew, tolerated):
            token = self._access_token(renew=renew)
            return self._call(
                method, path, tolerate=tolerated, headers=dict(headers or {}, Authorization=f"Bearer {token}"),
                **kwargs,
            )

        status, answer = once(False, tuple(tolerate) + (401,))
        if status == 401:
            status, answer = once(True, tuple(tolerate))
        return status, answer

    # --- payments ------------------------------------------------------------------------

    def create_payment(self, reference, amount, currency, return_url):
        """An order: ``{"provider_payment_id": <order id>, "redirect_url": <approve link>}``."""
        amount, currency, reference = check_payment(amount, currency, reference)
        order = {
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": reference,
                "custom_id": reference,
                "description": DESCRIPTION,
                "amount": {"currency_code": currency, "value": money_text(amount)},
            }],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": return_url,
                "cancel_url": return_url,
                "user_action": "PAY_NOW",
                "shipping_preference": "NO_SHIPPING",
            }}},
        }

        def attempt():
            _, answer = self._authorized(
                "POST", "/v2/checkout/orders", json=order,
                headers={"PayPal-Request-Id": f"topup-{reference}", "Prefer": "return=minimal"},
            )
            links = answer.get("links") if isinstance(answer.get("links"), list) else []
            approve = next(
                (link.get("href") for link in links
                 if isinstance(link, dict) and link.get("rel") in ("payer-action", "approve") and link.get("href")),
                None,
            )
            if approve is None:
                raise PaymentProviderError(self.name, "the order has no approve link")
            return {"provider_payment_id": str(field(self.name, answer, "id")), "redirect_url": str(approve)}

        return self._observed(attempt)

    # --- webhooks -----------------------------------------------------------------------

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        lowered = lower_headers(headers)
        transmission = {name: lowered.get(header) for name, header in TRANSMISSION_HEADERS.items()}
        missing = [TRANSMISSION_HEADERS[name] for name, value in transmission.items() if not value]
        if missing:
            raise self._rejected("bad_signature", f"missing {', '.join(h.upper() for h in missing)}")
        event = load_event(self.name, raw_body)
        self._verify(transmission, raw_body)

        status = _EVENTS.get(member(self.name, event, "event_type"))
        if status is None:
            return None
        capture = member(self.name, event, "resource", kind=dict)
        order_id = member(self.name, capture, "supplementary_data", "related_ids", "order_id")
        return self._notice(order_id, status, capture, capture.get("custom_id"))

    def retrieve_payment(self, provider_payment_id):
        """The order as PayPal has it now: a notice once final, else ``None``."""

        def get(order_id):
            return self._authorized("GET", f"/v2/checkout/orders/{order_id}", tolerate=NOT_FOUND)

        return self._retrieve(provider_payment_id, get, self._order_notice)

    def _order_notice(self, order):
        """An order's notice: its latest capture decides, else the order's own status."""
        units = member(self.name, order, "purchase_units", kind=list)
        unit = units[0] if units and isinstance(units[0], dict) else {}
        captures = (unit.get("payments") or {}).get("captures")
        if isinstance(captures, list) and captures:
            paid, status = captures[-1], _CAPTURE_STATUSES.get(member(self.name, captures[-1], "status"))
        else:
            paid, status = unit, _ORDER_STATUSES.get(member(self.name, order, "status"))
        if status is None:
            return None
        custom_id = paid.get("custom_id") or unit.get("custom_id")  # a capture may not repeat it
        return self._notice(member(self.name, order, "id"), status, paid, custom_id)

    def _notice(self, order_id, status, paid, custom_id):
        """The notice of order ``order_id`` from what was paid (``paid``: a capture, or the
        purchase unit), else ``malformed``."""
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=order_id,
            status=status,
            amount=notice_amount(self.name, member(self.name, paid, "amount", "value")),
            currency=notice_currency(self.name, member(self.name, paid, "amount", "currency_code")),
            reference=optional_text(custom_id),
        )

    def _verify(self, transmission, raw_body):
        """Ask PayPal whether it sent this; ``unverified`` unless it says SUCCESS."""
        fields = dict(transmission, webhook_id=self.webhook_id)
        # The event is spliced in as received (a JSON object: load_event checked it).
        body = (json.dumps(fields)[:-1] + ', "webhook_event": ').encode() + raw_body + b"}"

        def attempt():
            return self._authorized(
                "POST", "/v1/notifications/verify-webhook-signature", tolerate=(400, 404, 422),
                data=body, headers={"Content-Type": "application/json"},
            )

        status, answer = self._observed(attempt)
        if status != 200 or answer.get("verification_status") != "SUCCESS":
            raise self._rejected("unverified", "PayPal did not confirm the signature")
