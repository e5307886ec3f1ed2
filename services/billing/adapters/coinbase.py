"""Coinbase Commerce: a charge per top-up, and webhooks signed with a shared secret.

- Create: ``POST <base>/charges``, JSON ``{"name", "description", "pricing_type":
  "fixed_price", "local_price": {"amount", "currency"}, "metadata": {"reference"},
  "redirect_url", "cancel_url"}``, headers ``X-CC-Api-Key`` and ``X-CC-Version`` →
  ``{"data": {"id", "code", "hosted_url", …}}``.
- Webhook: header ``X-CC-Webhook-Signature`` = hex HMAC-SHA256 of the raw body with the
  endpoint's shared secret (no timestamp: Coinbase signs none). Body ``{"id",
  "scheduled_for", "event": {"id", "type", "data": <charge>}}``. ``charge:confirmed`` →
  succeeded, ``charge:failed`` → failed, every other type (``charge:created``,
  ``charge:pending``, ``charge:delayed``, ``charge:resolved``) → ``None``: a delayed or
  resolved charge was under- or overpaid and needs a person.
- Retrieve: ``GET <base>/charges/<id>`` → ``{"data": <charge>}``; the latest ``timeline``
  status decides: ``COMPLETED`` → succeeded, ``EXPIRED`` / ``CANCELED`` / ``FAILED`` →
  failed, anything else (``NEW``, ``SIGNED``, ``PENDING``, ``UNRESOLVED``, ``RESOLVED``,
  refunds) → ``None``.
"""

from services.billing.adapters import FAILED, SUCCEEDED, PaymentNotice
from services.billing.adapters._calls import (
    NOT_FOUND,
    PaymentProvider,
    any_matches,
    check_payment,
    field,
    hmac_hex,
    load_event,
    lower_headers,
    member,
    money_text,
    notice_amount,
    notice_currency,
    optional_text,
)

API_VERSION = "2018-03-22"
NAME = "Balance top-up"
_EVENTS = {"charge:confirmed": SUCCEEDED, "charge:failed": FAILED}
_TIMELINE_STATUSES = {"COMPLETED": SUCCEEDED, "EXPIRED": FAILED, "CANCELED": FAILED, "FAILED": FAILED}


class CoinbasePayments(PaymentProvider):
    name = "coinbase"

    def __init__(self, base_url, api_key, webhook_secret, timeout, observe=None):
        super().__init__(base_url, timeout, observe)
        self._api_key = api_key
        self._webhook_secret = webhook_secret

    def _headers(self):
        return {"X-CC-Api-Key": self._api_key, "X-CC-Version": API_VERSION}

    def create_payment(self, reference, amount, currency, return_url):
        """A charge: ``{"provider_payment_id": <charge id>, "redirect_url": <hosted_url>}``."""
        amount, currency, reference = check_payment(amount, currency, reference)
        charge = {
            "name": NAME,
            "description": f"Top-up {reference}",
            "pricing_type": "fixed_price",
            "local_price": {"amount": money_text(amount), "currency": currency},
            "metadata": {"reference": reference},
            "redirect_url": return_url,
            "cancel_url": return_url,
        }
        def attempt():
            _, answer = self._call("POST", "/charges", json=charge, headers=self._headers())
            return {
                "provider_payment_id": str(field(self.name, answer, "data", "id")),
                "redirect_url": str(field(self.name, answer, "data", "hosted_url")),
            }

        return self._observed(attempt)

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        signature = lower_headers(headers).get("x-cc-webhook-signature")
        if not signature:
            raise self._rejected("bad_signature", "no X-CC-Webhook-Signature header")
        if not any_matches(hmac_hex(self._webhook_secret, raw_body), [signature]):
            raise self._rejected("bad_signature", "the signature does not match")

        envelope = load_event(self.name, raw_body)
        event = member(self.name, envelope, "event", kind=dict)
        status = _EVENTS.get(member(self.name, event, "type"))
        if status is None:
            return None
        return self._charge_notice(member(self.name, event, "data", kind=dict), status)

    def retrieve_payment(self, provider_payment_id):
        """The charge as Coinbase has it now: a notice once final, else ``None``."""

        def get(charge_id):
            return self._call("GET", f"/charges/{charge_id}", tolerate=NOT_FOUND, headers=self._headers())

        def read(answer):
            charge = member(self.name, answer, "data", kind=dict)
            timeline = member(self.name, charge, "timeline", kind=list)
            status = _TIMELINE_STATUSES.get(member(self.name, timeline[-1] if timeline else {}, "status"))
            return None if status is None else self._charge_notice(charge, status)

        return self._retrieve(provider_payment_id, get, read)

    def _charge_notice(self, charge, status):
        """A charge's notice, else ``malformed``."""
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=member(self.name, charge, "id"),
            status=status,
            amount=notice_amount(self.name, member(self.name, charge, "pricing", "local", "amount")),
            currency=notice_currency(self.name, member(self.name, charge, "pricing", "local", "currency")),
            reference=optional_text((charge.get("metadata") or {}).get("reference")),
        )
