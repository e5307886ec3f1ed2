"""Coinbase Commerce charges in the payments sandbox: ``POST /coinbase/charges``,
``GET /coinbase/charges/<id or code>`` (``X-CC-Api-Key``); webhooks signed
``X-CC-Webhook-Signature``.
"""

import string
import uuid
from datetime import datetime, timedelta

from deploy.standins.base import json_response, read_json, same_secret
from deploy.standins.payments.base import (
    PENDING,
    SUCCEEDED,
    Provider,
    authenticated,
    checkout_url,
    hmac_hex,
    iso,
    parse_amount,
    parse_currency,
    random_text,
    utcnow,
)

API_VERSION = "2018-03-22"


class Coinbase(Provider):
    name = "coinbase"
    defaults = {"COINBASE_API_KEY": "dev-coinbase-key", "COINBASE_WEBHOOK_SECRET": "dev-coinbase-webhook-secret"}
    routes = (
        ("/coinbase/charges", "POST", "create"),
        ("/coinbase/charges/<pid>", "GET", "show"),
    )

    def unauthenticated(self, request):
        if not same_secret(request.headers.get("X-CC-Api-Key"), self.secret("COINBASE_API_KEY")):
            return json_response({"error": {"type": "authorization_error", "message": "No such API key."}}, status=401)
        return None

    @authenticated
    def create(self, request):
        body = read_json(request)
        price = body.get("local_price")
        if body.get("pricing_type") != "fixed_price" or not isinstance(price, dict) or not body.get("name"):
            return json_response({"error": {"type": "invalid_request", "message": "name, pricing_type fixed_price "
                                            "and local_price are required"}}, status=400)
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        payment, _ = self.remember(
            request, str(uuid.uuid4()), parse_amount(price.get("amount")),
            parse_currency(price.get("currency")), metadata.get("reference"), body.get("redirect_url"),
            details={
                "code": random_text(string.ascii_uppercase + string.digits, 8), "name": body["name"],
                "description": body.get("description"), "metadata": metadata, "cancel_url": body.get("cancel_url"),
                "created_at": iso(utcnow()),
            },
        )
        return json_response({"data": self.charge(payment)}, status=201)

    def charge(self, payment):
        details = payment["details"]
        timeline = [{"status": "NEW", "time": details["created_at"]}]
        if payment["status"] != PENDING:
            timeline.append({"status": "COMPLETED" if payment["status"] == SUCCEEDED else "EXPIRED",
                             "time": payment["completed_at"]})
        return {
            "id": payment["id"], "resource": "charge", "code": details["code"], "name": details["name"],
            "description": details["description"], "hosted_url": checkout_url(payment),
            "pricing_type": "fixed_price",
            "pricing": {"local": {"amount": payment["amount"], "currency": payment["currency"]}},
            "metadata": details["metadata"], "redirect_url": payment["return_url"],
            "cancel_url": details["cancel_url"], "created_at": details["created_at"],
            "expires_at": iso(datetime.fromisoformat(details["created_at"]) + timedelta(hours=1)),
            "timeline": timeline,
        }

    @authenticated
    def show(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            found = self.find(lambda p: p["details"].get("code") == pid)
            payment = found[0] if found else None
        if payment is None:
            return json_response({"error": {"type": "not_found", "message": "Not found"}}, status=404)
        return json_response({"data": self.charge(payment)})

    def event(self, payment):
        event_type = "charge:confirmed" if payment["status"] == SUCCEEDED else "charge:failed"
        return event_type, {
            "id": str(uuid.uuid4()), "scheduled_for": iso(utcnow()),
            "event": {
                "id": str(uuid.uuid4()), "resource": "event", "type": event_type,
                "api_version": API_VERSION, "created_at": iso(utcnow()),
                "data": self.charge(payment),
            },
        }

    def sign(self, payment, body):
        return {"X-CC-Webhook-Signature": hmac_hex(self.secret("COINBASE_WEBHOOK_SECRET"), body)}
