"""The bank (provider ``bank_wire``) in the payments sandbox: ``POST /bank/expected-transfers``
(Bearer), ``GET /bank/expected-transfers/<id>``, and the payer's side
``POST /bank/incoming-transfers`` ``{"reference", "amount", "currency"}``; webhooks signed
``X-Bank-Signature`` with ``X-Bank-Timestamp``. No checkout page: customers wire the money.
"""

import re

from deploy.standins.base import BadRequest, json_response, new_id, read_json, same_secret
from deploy.standins.payments.base import (
    PENDING,
    SUCCEEDED,
    FAILED,
    Provider,
    authenticated,
    bearer,
    iso,
    parse_amount,
    parse_currency,
    timestamped_hmac,
    utcnow,
)

def normalized(reference):
    """A transfer reference without spaces, in capitals."""
    return re.sub(r"\s+", "", str(reference or "")).upper()


class BankWire(Provider):
    name = "bank_wire"
    defaults = {
        "BANK_API_KEY": "dev-bank-key",
        "BANK_WEBHOOK_SECRET": "dev-bank-webhook-secret",
        # the account customers wire to
        "BANK_IBAN": "NL91ABNA0417164300",
        "BANK_BIC": "ABNANL2A",
        "BANK_BENEFICIARY": "HostPanel B.V.",
    }
    routes = (
        ("/bank/expected-transfers", "POST", "create"),
        ("/bank/expected-transfers/<pid>", "GET", "show"),
        ("/bank/incoming-transfers", "POST", "incoming"),
    )
    has_checkout_page = False

    def unauthenticated(self, request):
        if not same_secret(bearer(request), self.secret("BANK_API_KEY")):
            return json_response({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    def with_reference(self, reference):
        return self.find(lambda p: p["details"]["transfer_reference"] == reference)

    @authenticated
    def create(self, request):
        body = read_json(request)
        reference = normalized(body.get("reference"))
        if not re.fullmatch(r"[A-Z0-9-]{6,35}", reference):
            raise BadRequest({"error": "reference must be 6 to 35 letters, digits or hyphens"})
        amount, currency = parse_amount(body.get("amount")), parse_currency(body.get("currency"))
        if self.with_reference(reference):  # one pending expectation per payment reference
            return json_response({"error": "reference already in use"}, status=409)
        payment, _ = self.remember(
            request, "bw_" + new_id()[:20], amount, currency, body.get("external_id"), None,
            details={"transfer_reference": reference},
        )
        return json_response(self.transfer(payment), status=201)

    def transfer(self, payment):
        return {
            "id": payment["id"], "reference": payment["details"]["transfer_reference"],
            "external_id": payment["reference"], "amount": payment["amount"], "currency": payment["currency"],
            "iban": self.settings["BANK_IBAN"], "bic": self.settings["BANK_BIC"],
            "beneficiary": self.settings["BANK_BENEFICIARY"],
            "status": {PENDING: "expected", SUCCEEDED: "received", FAILED: "expired"}[payment["status"]],
            "received_amount": payment["details"].get("received_amount"), "created_at": payment["created_at"],
        }

    @authenticated
    def show(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            return json_response({"error": "not found"}, status=404)
        return json_response(self.transfer(payment))

    def incoming(self, request):
        """The payer's bank sends money with a reference: match it, notify the merchant."""
        body = read_json(request)
        reference = normalized(body.get("reference"))
        amount, currency = parse_amount(body.get("amount")), parse_currency(body.get("currency"))
        found = self.with_reference(reference)
        if not found:
            raise BadRequest({"error": "no expected transfer has this reference"}, status=404)
        if currency != found[0]["currency"]:
            raise BadRequest({"error": f"the transfer expected is in {found[0]['currency']}"}, status=422)
        payment, delivery = self.sandbox.complete(found[0]["id"], SUCCEEDED, received_amount=amount)
        return json_response({"payment": self.sandbox.public(payment), "delivery": delivery}, status=202)

    def public_fields(self, payment):
        return {
            "transfer_reference": payment["details"]["transfer_reference"],
            "received_amount": payment["details"].get("received_amount"),
        }

    def settle(self, payment, outcome, received_amount):
        if outcome == SUCCEEDED:
            payment["details"]["received_amount"] = str(received_amount or payment["amount"])

    def event(self, payment):
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

    def sign(self, payment, body):
        timestamp, signature = timestamped_hmac(self.secret("BANK_WEBHOOK_SECRET"), body)
        return {"X-Bank-Timestamp": str(timestamp), "X-Bank-Signature": signature}
