"""Revolut Merchant orders in the payments sandbox: ``POST /revolut/api/orders``,
``GET /revolut/api/orders/<id>`` (Bearer); webhooks signed ``Revolut-Signature: v1=…``
with ``Revolut-Request-Timestamp``.
"""

import uuid

from deploy.standins.base import json_response, read_json, same_secret
from deploy.standins.payments.base import (
    PENDING,
    SUCCEEDED,
    FAILED,
    Provider,
    authenticated,
    bearer,
    cents,
    checkout_url,
    from_cents,
    iso,
    parse_currency,
    timestamped_hmac,
    utcnow,
)


class Revolut(Provider):
    name = "revolut"
    defaults = {"REVOLUT_API_KEY": "sk_dev_revolut", "REVOLUT_WEBHOOK_SECRET": "wsk_dev_revolut"}
    routes = (
        ("/revolut/api/orders", "POST", "create"),
        ("/revolut/api/orders/<pid>", "GET", "show"),
    )

    def unauthenticated(self, request):
        if not same_secret(bearer(request), self.secret("REVOLUT_API_KEY")):
            return json_response({"code": "unauthenticated", "message": "Authentication failed"}, status=401)
        return None

    @authenticated
    def create(self, request):
        body = read_json(request)
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or not body.get("currency"):
            return json_response(
                {"code": "bad_request", "message": "amount (minor units) and currency are required"}, status=400,
            )
        order_data = body.get("merchant_order_data") if isinstance(body.get("merchant_order_data"), dict) else {}
        payment, _ = self.remember(
            request, str(uuid.uuid4()), from_cents(amount),
            parse_currency(body["currency"]), order_data.get("reference") or body.get("merchant_order_ext_ref"),
            body.get("redirect_url"),
            details={"token": str(uuid.uuid4()), "description": body.get("description"), "created_at": iso(utcnow())},
        )
        return json_response(self.order(payment), status=201)

    def order(self, payment):
        details = payment["details"]
        state = {PENDING: "pending", SUCCEEDED: "completed", FAILED: "failed"}[payment["status"]]
        return {
            "id": payment["id"], "token": details["token"], "type": "payment", "state": state,
            "created_at": details["created_at"], "updated_at": payment["completed_at"] or details["created_at"],
            "amount": cents(payment["amount"]), "currency": payment["currency"],
            "outstanding_amount": 0 if state == "completed" else cents(payment["amount"]),
            "capture_mode": "automatic", "description": details["description"],
            "merchant_order_data": {"reference": payment["reference"]},
            "checkout_url": checkout_url(payment), "redirect_url": payment["return_url"],
        }

    @authenticated
    def show(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            return json_response({"code": "not_found", "message": "Order not found"}, status=404)
        return json_response(self.order(payment))

    def event(self, payment):
        event_type = "ORDER_COMPLETED" if payment["status"] == SUCCEEDED else "ORDER_PAYMENT_FAILED"
        return event_type, {
            "event": event_type, "order_id": payment["id"], "merchant_order_ext_ref": payment["reference"],
        }

    def sign(self, payment, body):
        timestamp, signature = timestamped_hmac(self.secret("REVOLUT_WEBHOOK_SECRET"), body, "v1.", per_second=1000)
        return {"Revolut-Request-Timestamp": str(timestamp), "Revolut-Signature": f"v1={signature}"}
