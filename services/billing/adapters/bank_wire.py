"""Bank wire (SEPA/SWIFT): no redirect; the customer transfers the money themselves with a
payment reference we generate, and our bank tells us when a transfer with it arrives.

- Create: ``POST <base>/expected-transfers``, JSON ``{"reference": "HP-XXXXXXXXXX",
  "external_id": <our reference>, "amount", "currency"}``, ``Authorization: Bearer <bank API
  key>`` → ``{"id": "bw_…", "iban", "bic", "beneficiary", …}``, returned as payment
  instructions. The payment reference is ``HP-`` and 10 characters from an alphabet without
  look-alikes (no 0/O, 1/I), typed by people into their bank's form; should the bank already
  hold it (409), a new one is drawn.
- Webhook: headers ``X-Bank-Timestamp`` (Unix seconds) and ``X-Bank-Signature`` = hex
  HMAC-SHA256 of ``"<timestamp>.<raw body>"`` with the shared secret; the timestamp within
  300 s of now. Body ``{"id", "type", "created_at", "data": {"transfer_id", "reference",
  "external_id", "amount", "currency"}}``: ``transfer.received`` → succeeded (the amount is
  what arrived, which may differ from what was expected), ``transfer.expired`` /
  ``transfer.returned`` → failed, other types → ``None``.
- Retrieve: ``GET <base>/expected-transfers/<id>`` → the expected transfer (``id``,
  ``external_id``, ``amount``, ``currency``, ``status``, ``received_amount``): ``received`` →
  succeeded with the amount received, ``expired`` / ``returned`` → failed, ``expected`` (or
  anything else) → ``None``.
"""

import secrets

from services.billing.adapters import (
    FAILED,
    SUCCEEDED,
    PaymentNotice,
    PaymentProviderError,
)
from services.billing.adapters._calls import (
    DEFAULT_TOLERANCE_SECONDS,
    NOT_FOUND,
    PaymentProvider,
    any_matches,
    check_fresh,
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
    parse_int,
)

REFERENCE_PREFIX = "HP-"
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 10
REFERENCE_ATTEMPTS = 3
_EVENTS = {"transfer.received": SUCCEEDED, "transfer.expired": FAILED, "transfer.returned": FAILED}
_STATUSES = {"received": SUCCEEDED, "expired": FAILED, "returned": FAILED}


def new_transfer_reference():
    """``HP-`` and 10 random characters (50 bits)."""
    return REFERENCE_PREFIX + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


class BankWirePayments(PaymentProvider):
    name = "bank_wire"

    def __init__(self, base_url, api_key, webhook_secret, timeout, observe=None,
                 tolerance=DEFAULT_TOLERANCE_SECONDS):
        super().__init__(base_url, timeout, observe)
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self.tolerance = tolerance

    def _headers(self):
        return {"Authorization": f"Bearer {self._api_key}"}

    def create_payment(self, reference, amount, currency, return_url=None):
        """An expected transfer: ``{"provider_payment_id": "bw_…", "instructions": {"iban",
        "bic", "beneficiary", "reference", "amount", "currency"}}`` (``return_url`` unused)."""
        amount, currency, reference = check_payment(amount, currency, reference)

        def attempt():
            for _ in range(REFERENCE_ATTEMPTS):
                transfer_reference = new_transfer_reference()
                status, answer = self._call(
                    "POST", "/expected-transfers", tolerate=(409,),
                    json={"reference": transfer_reference, "external_id": reference,
                          "amount": money_text(amount), "currency": currency},
                    headers=self._headers(),
                )
                if status != 409:
                    break
            else:
                raise PaymentProviderError(self.name, "the bank refused every payment reference drawn")
            return {
                "provider_payment_id": str(field(self.name, answer, "id")),
                "instructions": {
                    "iban": str(field(self.name, answer, "iban")),
                    "bic": str(field(self.name, answer, "bic")),
                    "beneficiary": str(field(self.name, answer, "beneficiary")),
                    "reference": transfer_reference,
                    "amount": money_text(amount),
                    "currency": currency,
                },
            }

        return self._observed(attempt)

    def parse_webhook(self, headers, raw_body, now=None):
        raw_body = raw_body.encode() if isinstance(raw_body, str) else bytes(raw_body)
        lowered = lower_headers(headers)
        timestamp_text, signature = lowered.get("x-bank-timestamp"), lowered.get("x-bank-signature")
        if not timestamp_text or not signature:
            raise self._rejected("bad_signature", "no X-Bank-Signature or X-Bank-Timestamp header")
        timestamp = parse_int(self.name, timestamp_text.strip(), "X-Bank-Timestamp")
        if not any_matches(hmac_hex(self._webhook_secret, f"{timestamp}.".encode() + raw_body), [signature]):
            raise self._rejected("bad_signature", "the signature does not match")
        check_fresh(self.name, timestamp, now, self.tolerance)

        event = load_event(self.name, raw_body)
        status = _EVENTS.get(member(self.name, event, "type"))
        if status is None:
            return None
        return self._transfer_notice(member(self.name, event, "data", kind=dict), status, "transfer_id", "amount")

    def retrieve_payment(self, provider_payment_id):
        """The expected transfer as the bank has it now: a notice once final, else ``None``."""

        def get(transfer_id):
            path = f"/expected-transfers/{transfer_id}"
            return self._call("GET", path, tolerate=NOT_FOUND, headers=self._headers())

        def read(transfer):
            status = _STATUSES.get(member(self.name, transfer, "status"))
            if status is None:
                return None
            amount_key = "received_amount" if status == SUCCEEDED else "amount"
            return self._transfer_notice(transfer, status, "id", amount_key)

        return self._retrieve(provider_payment_id, get, read)

    def _transfer_notice(self, data, status, id_key, amount_key):
        """The notice of a transfer (a webhook's ``data`` or an expected transfer, whose id
        and amount are under ``id_key`` and ``amount_key``), else ``malformed``."""
        return PaymentNotice(
            provider=self.name,
            provider_payment_id=member(self.name, data, id_key),
            status=status,
            amount=notice_amount(self.name, member(self.name, data, amount_key, kind=None)),
            currency=notice_currency(self.name, data.get("currency")),
            reference=optional_text(data.get("external_id")),
        )
