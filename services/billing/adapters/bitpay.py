"""BitPay: an invoice per top-up, and instant payment notifications (IPN) that we trust only
after fetching the invoice back.

- Create: ``POST <base>/invoices``, JSON ``{"token", "price", "currency", "orderId":
  <reference>, "itemDesc", "redirectURL", "notificationURL" (when configured),
  "extendedNotifications": true}``, header ``X-Accept-Version: 2.0.0`` (the POS facade: the
  token in the body, no request signing) → ``{"data": {"id", "url", "status": "new", …}}``.
- Webhook: BitPay does not sign its IPNs. The body only tells which invoice changed
  (``data.id``, or ``id`` in the older format); we fetch ``GET <base>/invoices/<id>?token=``
  and trust only what that answers: ``confirmed``/``complete`` → succeeded,
  ``expired``/``invalid`` → failed, anything else (``new``, ``paid``: not final yet) →
  ``None``. An invoice BitPay does not know → ``WebhookRejected("unverified")``.
- Retrieve: the same ``GET <base>/invoices/<id>?token=``, read the same way; an invoice
  BitPay does not know is a ``PaymentProviderError``.

BitPay puts the token in the query string; urllib3 logs request lines at DEBUG, so this
module masks ``token=`` values in urllib3's log records.
"""

import logging
import re

from services.billing.adapters import FAILED, SUCCEEDED, PaymentNotice
from services.billing.adapters._calls import (
    NOT_FOUND,
    PaymentProvider,
    check_payment,
    field,
    is_payment_id,
    load_event,
    member,
    notice_amount,
    notice_currency,
    optional_text,
)

API_VERSION = "2.0.0"
DESCRIPTION = "Balance top-up"
_STATUSES = {"confirmed": SUCCEEDED, "complete": SUCCEEDED, "expired": FAILED, "invalid": FAILED}
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+")


class _MaskTokens(logging.Filter):
    """Masks ``token=<value>`` in a log record's message."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a record we cannot format is left to the handler
            return True
        if "token=" in message:
            record.msg, record.args = _TOKEN_IN_TEXT.sub(r"\1<masked>", message), None
        return True


def _mask_tokens_in_urllib3_logs():
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _MaskTokens) for f in logger.filters):
        logger.addFilter(_MaskTokens())


_mask_tokens_in_urllib3_logs()


class BitPayPayments(PaymentProvider):
    name = "bitpay"

    def __init__(self, base_url, token, timeout, observe=None, notification_url=None):
        super().__init__(base_url, timeout, observe)
        self._token = token
        self.notification_url = notification_url

    def create_payment(self, reference, amount, currency, return_url):
        """An invoice: ``{"provider_payment_id": <invoice id>, "redirect_url": <invoice url>}``."""
        amount, currency, reference = check_payment(amount, currency, reference)
        invoice = {
            "token": self._token,
            "price": float(amount),  # BitPay takes a JSON number; two decimals survive a float
            "currency": currency,
            "orderId": reference,
            "itemDesc": DESCRIPTION,
            "redirectURL": return_url,
            "extendedNotifications": True,
        }
        if self.notification_url:
            invoice["notificationURL"] = self.notification_url

        def attempt():
            _, answer = self._call("POST", "/invoices", json=invoice, headers={"X-Accept-Version": API_VERSION})
            return {
                "provider_payment_id": str(field(self.name, answer, "data", "id")),
                "redirect_url": str(field(self.name, answer, "data", "url")),
            }

        return self._observed(attempt)

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        event = load_event(self.name, raw_body)
        data = event.get("data") if isinstance(event.get("data"), dict) else event
        invoice_id = data.get("id")
        if not is_payment_id(invoice_id):
            raise self._rejected("malformed", "no valid invoice id")

        invoice = self._fetch(invoice_id)
        if invoice.get("id") != invoice_id:
            raise self._rejected("unverified", "BitPay answered for another invoice")
        return self._invoice_notice(invoice)

    def retrieve_payment(self, provider_payment_id):
        """The invoice as BitPay has it now: a notice once final, else ``None``."""
        return self._retrieve(
            provider_payment_id, self._get_invoice,
            lambda answer: self._invoice_notice(member(self.name, answer, "data", kind=dict)),
        )

    def _invoice_notice(self, invoice):
        """An invoice's notice; ``None`` while it is not final."""
        status = _STATUSES.get(invoice.get("status"))
        if status is None:
            return None
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=member(self.name, invoice, "id"),
            status=status,
            amount=notice_amount(self.name, invoice.get("price")),
            currency=notice_currency(self.name, invoice.get("currency")),
            reference=optional_text(invoice.get("orderId")),
        )

    def _get_invoice(self, invoice_id):
        """``(HTTP status, answer)`` of BitPay's GET of the invoice (``NOT_FOUND`` tolerated)."""
        return self._call(
            "GET", f"/invoices/{invoice_id}", tolerate=NOT_FOUND,
            params={"token": self._token}, headers={"X-Accept-Version": API_VERSION},
        )

    def _fetch(self, invoice_id):
        """The invoice as BitPay has it now; ``unverified`` when BitPay does not know it."""
        status, answer = self._observed(lambda: self._get_invoice(invoice_id))
        invoice = answer.get("data")
        if status != 200 or not isinstance(invoice, dict):
            raise self._rejected("unverified", "BitPay does not know this invoice")
        return invoice
