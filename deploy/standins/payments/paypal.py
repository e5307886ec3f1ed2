"""PayPal Orders v2 in the payments sandbox: ``POST /paypal/v1/oauth2/token`` (Basic client
id:secret), ``POST /paypal/v2/checkout/orders`` (Bearer token, ``PayPal-Request-Id``),
``GET /paypal/v2/checkout/orders/<id>``, ``POST /paypal/v1/notifications/verify-webhook-signature``;
webhooks with ``PAYPAL-TRANSMISSION-*`` headers, checkable only through that verify call.
"""

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
import uuid
import zlib

from deploy.standins.base import json_response, new_id, read_json, same_secret
from deploy.standins.payments.base import (
    PENDING,
    SUCCEEDED,
    FAILED,
    Provider,
    authenticated,
    bearer,
    checkout_url,
    iso,
    parse_amount,
    parse_currency,
    random_text,
    utcnow,
)

TOKEN_LIFETIME = 32400
ID_ALPHABET = string.ascii_uppercase + string.digits
VERIFY_FIELDS = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")


class PayPal(Provider):
    name = "paypal"
    defaults = {
        "PAYPAL_CLIENT_ID": "dev-paypal-client",
        "PAYPAL_CLIENT_SECRET": "dev-paypal-secret",
        "PAYPAL_WEBHOOK_ID": "WH-DEV-0001",
    }
    routes = (
        ("/paypal/v1/oauth2/token", "POST", "token"),
        ("/paypal/v2/checkout/orders", "POST", "create"),
        ("/paypal/v2/checkout/orders/<pid>", "GET", "show"),
        ("/paypal/v1/notifications/verify-webhook-signature", "POST", "verify"),
    )

    def __init__(self, sandbox, settings):
        super().__init__(sandbox, settings)
        self._lock = threading.Lock()
        self._tokens = {}  # access token → expiry (monotonic)
        # PayPal signs with a certificate; the sandbox with a key of its own, known to no one.
        self._signing_key = secrets.token_bytes(32)

    def token(self, request):
        refusal = self.sandbox.misbehave(self.name)
        if refusal is not None:
            return refusal
        auth = request.authorization
        if (
            auth is None or auth.type != "basic"
            or not same_secret(auth.username, self.secret("PAYPAL_CLIENT_ID"))
            or not same_secret(auth.password, self.secret("PAYPAL_CLIENT_SECRET"))
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}, status=401,
                headers={"WWW-Authenticate": 'Basic realm="PayPal"'},
            )
        if request.form.get("grant_type") != "client_credentials":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, status=400,
            )
        token = "A21AA" + random_text(string.ascii_letters + string.digits + "-_", 60)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + TOKEN_LIFETIME
        return json_response({
            "scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
            "token_type": "Bearer", "app_id": "APP-SANDBOX", "expires_in": TOKEN_LIFETIME,
            "nonce": iso(utcnow()) + new_id()[:16],
        })

    def unauthenticated(self, request):
        token = bearer(request)
        with self._lock:
            expiry = self._tokens.get(token) if token else None
        if expiry is None or expiry < time.monotonic():
            return json_response({
                "name": "AUTHENTICATION_FAILURE", "message": "Authentication failed due to invalid authentication "
                "credentials or a missing Authorization header.", "links": [],
            }, status=401)
        return None

    @authenticated
    def create(self, request):
        body = read_json(request)
        units = body.get("purchase_units")
        unit = units[0] if isinstance(units, list) and len(units) == 1 and isinstance(units[0], dict) else None
        amount = unit.get("amount") if unit else None
        if body.get("intent") != "CAPTURE" or not isinstance(amount, dict):
            return json_response({
                "name": "INVALID_REQUEST", "message": "Request is not well-formed, syntactically incorrect, or "
                "violates schema.",
                "details": [{"issue": "MISSING_REQUIRED_PARAMETER", "field": "/purchase_units/0/amount"}],
            }, status=400)
        experience = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
        return_url = experience.get("return_url") or (body.get("application_context") or {}).get("return_url")
        payment, created = self.remember(
            request, random_text(ID_ALPHABET, 17),
            parse_amount(amount.get("value")), parse_currency(amount.get("currency_code")),
            unit.get("custom_id") or unit.get("reference_id"), return_url,
            details={
                "custom_id": unit.get("custom_id"), "reference_id": unit.get("reference_id"),
                "capture_id": random_text(ID_ALPHABET, 17), "create_time": iso(utcnow()),
                "rel": "payer-action" if experience else "approve",
            },
            idempotency_key=request.headers.get("PayPal-Request-Id"),
        )
        return json_response(self.order(payment), status=201 if created else 200)

    def order(self, payment):
        details = payment["details"]
        base = f"{payment['sandbox_url']}paypal/v2/checkout/orders/{payment['id']}"
        return {
            "id": payment["id"], "intent": "CAPTURE",
            "status": {PENDING: "PAYER_ACTION_REQUIRED", SUCCEEDED: "COMPLETED", FAILED: "VOIDED"}[payment["status"]],
            "create_time": details["create_time"],
            "purchase_units": [{
                "reference_id": details["reference_id"], "custom_id": details["custom_id"],
                "amount": {"currency_code": payment["currency"], "value": payment["amount"]},
            }],
            "links": [
                {"href": base, "rel": "self", "method": "GET"},
                {"href": checkout_url(payment), "rel": details["rel"], "method": "GET"},
            ],
        }

    @authenticated
    def show(self, request, pid):
        payment = self.get(pid)
        if payment is None:
            return json_response(
                {"name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist."}, status=404,
            )
        return json_response(self.order(payment))

    def event(self, payment):
        succeeded = payment["status"] == SUCCEEDED
        event_type = "PAYMENT.CAPTURE.COMPLETED" if succeeded else "PAYMENT.CAPTURE.DENIED"
        details = payment["details"]
        summary = f"Payment {'completed' if succeeded else 'denied'} for {payment['currency']} {payment['amount']}"
        events_url = f"{payment['sandbox_url']}paypal/v1/notifications/webhooks-events"
        capture_url = f"{payment['sandbox_url']}paypal/v2/payments/captures/{details['capture_id']}"
        return event_type, {
            "id": "WH-" + random_text(ID_ALPHABET, 17), "event_version": "1.0",
            "create_time": iso(utcnow()), "resource_type": "capture", "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "id": details["capture_id"], "status": "COMPLETED" if succeeded else "DECLINED",
                "amount": {"currency_code": payment["currency"], "value": payment["amount"]},
                "custom_id": details["custom_id"], "final_capture": True, "create_time": details["create_time"],
                "update_time": iso(utcnow()),
                "supplementary_data": {"related_ids": {"order_id": payment["id"]}},
                "links": [{"href": capture_url, "rel": "self", "method": "GET"}],
            },
            "links": [{"href": events_url, "rel": "self", "method": "GET"}],
        }

    def signature(self, transmission_id, transmission_time, webhook_id, event):
        """PayPal signs ``<id>|<time>|<webhook id>|<CRC32 of the body>`` with its certificate;
        the sandbox with an HMAC of its own, over the event in a canonical form (so that the
        verify call checks the event's content, however it was re-encoded)."""
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(canonical)}".encode()
        return base64.b64encode(hmac.new(self._signing_key, message, hashlib.sha256).digest()).decode()

    def sign(self, payment, body):
        transmission_id = str(uuid.uuid4())
        transmission_time = iso(utcnow().replace(microsecond=0))
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self.signature(
                transmission_id, transmission_time, self.secret("PAYPAL_WEBHOOK_ID"), json.loads(body),
            ),
            "PAYPAL-CERT-URL": f"{payment['sandbox_url']}paypal/v1/notifications/certs/CERT-sandbox",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }

    @authenticated
    def verify(self, request):
        body = read_json(request)
        missing = [f for f in VERIFY_FIELDS if not isinstance(body.get(f), str) or not body[f]]
        if missing or not isinstance(body.get("webhook_event"), dict):
            return json_response({
                "name": "VALIDATION_ERROR", "message": "Invalid request - see details",
                "details": [{"field": f, "issue": "MISSING_REQUIRED_PARAMETER"} for f in missing or ["webhook_event"]],
            }, status=400)
        verified = (
            body["auth_algo"] == "SHA256withRSA"
            and same_secret(body["webhook_id"], self.secret("PAYPAL_WEBHOOK_ID"))
            and same_secret(body["transmission_sig"], self.signature(
                body["transmission_id"], body["transmission_time"], body["webhook_id"], body["webhook_event"],
            ))
        )
        return json_response({"verification_status": "SUCCESS" if verified else "FAILURE"})
