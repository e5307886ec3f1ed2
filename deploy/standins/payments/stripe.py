"""Stripe Checkout in the payments sandbox: ``POST /stripe/v1/checkout/sessions`` (form,
``Authorization: Bearer <secret key>`` or the key as Basic user, ``Idempotency-Key``),
``GET /stripe/v1/checkout/sessions/<id>``; webhooks pretty-printed, signed
``Stripe-Signature: t=…,v1=…``.
"""

import string
import time

from deploy.standins.base import json_response, same_secret
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
    random_text,
    timestamped_hmac,
)

API_VERSION = "2024-06-20"
ALPHANUMERIC = string.ascii_letters + string.digits
REQUIRED = (
    "mode", "success_url", "line_items[0][price_data][currency]",
    "line_items[0][price_data][unit_amount]", "line_items[0][quantity]",
)


def error(message, param):
    return json_response({"error": {"type": "invalid_request_error", "message": message, "param": param}}, status=400)


def prefixed(form, prefix):
    """The ``<prefix>[key]`` fields of a form as a dict by key."""
    return {k[len(prefix):-1]: v for k, v in form.items() if k.startswith(prefix)}


class Stripe(Provider):
    name = "stripe"
    defaults = {"STRIPE_SECRET_KEY": "sk_test_dev", "STRIPE_WEBHOOK_SECRET": "whsec_dev"}
    routes = (
        ("/stripe/v1/checkout/sessions", "POST", "create"),
        ("/stripe/v1/checkout/sessions/<pid>", "GET", "show"),
    )
    webhook_indent = 2  # Stripe sends pretty JSON

    def unauthenticated(self, request):
        key = bearer(request)
        if key is None and request.authorization and request.authorization.type == "basic":
            key = request.authorization.username  # Stripe also takes the key as Basic user
        if not same_secret(key, self.secret("STRIPE_SECRET_KEY")):
            return json_response({"error": {
                "type": "invalid_request_error", "message": "Invalid API Key provided.",
            }}, status=401, headers={"WWW-Authenticate": 'Bearer realm="Stripe"'})
        return None

    @authenticated
    def create(self, request):
        form = request.form
        missing = [f for f in REQUIRED if not form.get(f)]
        if missing:
            return error(f"Missing required param: {missing[0]}.", missing[0])
        if form["mode"] != "payment":
            return error("Only mode=payment is played by the sandbox.", "mode")
        try:
            unit_amount = int(form["line_items[0][price_data][unit_amount]"])
            quantity = int(form["line_items[0][quantity]"])
        except ValueError:
            return error("Invalid integer.", "line_items[0][price_data][unit_amount]")
        if unit_amount <= 0 or quantity <= 0:
            return error("Amounts must be positive.", "line_items[0][price_data][unit_amount]")
        metadata = prefixed(form, "metadata[")
        payment, _ = self.remember(
            request, "cs_test_" + random_text(ALPHANUMERIC, 58),
            from_cents(unit_amount * quantity), form["line_items[0][price_data][currency]"].upper(),
            form.get("client_reference_id") or metadata.get("reference"), form["success_url"],
            details={
                "cancel_url": form.get("cancel_url"), "metadata": metadata,
                "intent_metadata": prefixed(form, "payment_intent_data[metadata]["),
                "client_reference_id": form.get("client_reference_id"),
                "payment_intent": "pi_" + random_text(ALPHANUMERIC, 24),
                "created": int(time.time()),
            },
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return json_response(self.session(payment), status=200)

    def session(self, payment):
        status, payment_status = {
            PENDING: ("open", "unpaid"), SUCCEEDED: ("complete", "paid"), FAILED: ("expired", "unpaid"),
        }[payment["status"]]
        details = payment["details"]
        return {
            "id": payment["id"], "object": "checkout.session", "mode": "payment", "livemode": False,
            "amount_total": cents(payment["amount"]), "amount_subtotal": cents(payment["amount"]),
            "currency": payment["currency"].lower(), "client_reference_id": details["client_reference_id"],
            "metadata": details["metadata"], "created": details["created"],
            "expires_at": details["created"] + 86400, "payment_intent": details["payment_intent"],
            "payment_status": payment_status, "status": status, "success_url": payment["return_url"],
            "cancel_url": details["cancel_url"], "url": checkout_url(payment),
        }

    @authenticated
    def show(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            return json_response({"error": {
                "type": "invalid_request_error", "code": "resource_missing", "message": "No such checkout.session",
            }}, status=404)
        return json_response(self.session(payment))

    def event(self, payment):
        event_type = "checkout.session.completed" if payment["status"] == SUCCEEDED else "checkout.session.expired"
        return event_type, {
            "id": "evt_" + random_text(ALPHANUMERIC, 24), "object": "event",
            "api_version": API_VERSION, "created": int(time.time()), "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type,
            "data": {"object": self.session(payment)},
        }

    def sign(self, payment, body):
        timestamp, signature = timestamped_hmac(self.secret("STRIPE_WEBHOOK_SECRET"), body)
        return {"Stripe-Signature": f"t={timestamp},v1={signature}"}
