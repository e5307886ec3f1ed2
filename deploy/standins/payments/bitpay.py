"""BitPay invoices in the payments sandbox: ``POST /bitpay/invoices`` (token in the body),
``GET /bitpay/invoices/<id>?token=``; unsigned IPNs.
"""

import string
import time

from deploy.standins.base import json_response, read_json, same_secret
from deploy.standins.payments.base import (
    PENDING,
    SUCCEEDED,
    FAILED,
    Provider,
    checkout_url,
    parse_amount,
    parse_currency,
    random_text,
)


def error(message, status):
    return json_response({"status": "error", "code": "000000", "data": None, "error": message}, status=status)


class BitPay(Provider):
    name = "bitpay"
    defaults = {"BITPAY_TOKEN": "dev-bitpay-token"}
    routes = (
        ("/bitpay/invoices", "POST", "create"),
        ("/bitpay/invoices/<pid>", "GET", "show"),
    )

    def unauthenticated(self, token):
        if not same_secret(token if isinstance(token, str) else None, self.secret("BITPAY_TOKEN")):
            return error("Invalid token", 401)
        return None

    def create(self, request):
        body = read_json(request)
        refusal = self.refused(body.get("token"))
        if refusal is not None:
            return refusal
        if body.get("price") is None or not body.get("currency"):
            return error("Price and currency required", 400)
        payment, _ = self.remember(
            request, random_text(string.ascii_letters + string.digits, 22),
            parse_amount(body["price"], "price"), parse_currency(body["currency"]), body.get("orderId"),
            body.get("redirectURL"),
            details={
                "itemDesc": body.get("itemDesc"), "notificationURL": body.get("notificationURL"),
                "invoiceTime": int(time.time() * 1000),
            },
        )
        return json_response({"facade": "pos/invoice", "data": self.invoice(payment)})

    def invoice(self, payment):
        details = payment["details"]
        return {
            "id": payment["id"], "url": checkout_url(payment),
            "status": {PENDING: "new", SUCCEEDED: "confirmed", FAILED: "expired"}[payment["status"]],
            "price": float(payment["amount"]), "currency": payment["currency"], "orderId": payment["reference"],
            "itemDesc": details["itemDesc"], "invoiceTime": details["invoiceTime"],
            "expirationTime": details["invoiceTime"] + 15 * 60 * 1000, "currentTime": int(time.time() * 1000),
            "redirectURL": payment["return_url"], "exceptionStatus": False,
        }

    def show(self, request, pid):
        refusal = self.refused(request.args.get("token"))
        if refusal is not None:
            return refusal
        payment = self.get(pid)
        if payment is None:
            return error("Object not found", 404)
        return json_response({"facade": "pos/invoice", "data": self.invoice(payment)})

    def event(self, payment):
        event = {"code": 1005, "name": "invoice_confirmed"} if payment["status"] == SUCCEEDED else \
            {"code": 1004, "name": "invoice_expired"}
        return event["name"], {"event": event, "data": self.invoice(payment)}

    def sign(self, payment, body):
        return {"X-Accept-Version": "2.0.0"}  # BitPay signs no IPN
