"""Billing routes (API.md "Billing", R-BILL-1…3) and the payment providers' webhooks."""

import base64

from common.errors import ValidationFailed
from gateway.http import http, idempotency_key, load_json, load_query
from gateway.schemas import InvoiceQuerySchema, TopupCreateSchema, TransactionQuerySchema

BASE = "/api/v1/billing"
MAX_WEBHOOK_BYTES = 256 * 1024
# Headers a provider signs or identifies itself with; nothing else is forwarded.
FORWARDED_HEADER_PREFIXES = ("stripe-", "paypal-", "x-cc-", "revolut-", "x-bank-", "x-signature", "content-type",
                             "user-agent", "x-bitpay")


class BillingRoutes:
    @http("GET", f"{BASE}/account")
    def billing_account(self, request):
        """The balance and whether anything is overdue (R-BILL-1).
        ---
        get:
          tags: [billing]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Account}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.billing.get_account()

    @http("GET", f"{BASE}/invoices")
    def list_invoices(self, request):
        """The customer's invoices, newest first (R-BILL-1).
        ---
        get:
          tags: [billing]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: InvoiceQuerySchema}
          responses:
            200: {content: {application/json: {schema: InvoiceList}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.billing.list_invoices(**load_query(request, InvoiceQuerySchema))

    @http("GET", f"{BASE}/transactions")
    def list_transactions(self, request):
        """The statement: every credit (top-ups, refunds) and debit (orders, renewals), newest first.
        ---
        get:
          tags: [billing]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: TransactionQuerySchema}
          responses:
            200: {content: {application/json: {schema: TransactionList}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.billing.list_transactions(**load_query(request, TransactionQuerySchema))

    @http("GET", f"{BASE}/payment-methods")
    def payment_methods(self, request):
        """The six payment methods, each with what it accepts (R-BILL-3).
        ---
        get:
          tags: [billing]
          responses:
            200: {content: {application/json: {schema: PaymentMethodList}}}
        """
        items = self.cluster.billing.payment_methods()
        return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}

    @http("POST", f"{BASE}/topups")
    def create_topup(self, request):
        """Top up the balance (minimum 20) with a payment method; answers where to pay (R-BILL-2).
        ---
        post:
          tags: [billing]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200}}
          requestBody: {content: {application/json: {schema: TopupCreate}}}
          responses:
            201: {content: {application/json: {schema: Topup}}}
            400: {description: "amount below 20, unknown method", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, TopupCreateSchema())
        key = idempotency_key(request)
        return 201, self.cluster.slow.billing.create_topup(str(body["amount"]), body["method"], idempotency_key=key)

    @http("GET", f"{BASE}/topups/<topup_id>")
    def get_topup(self, request, topup_id):
        """A top-up's state: pending, succeeded or failed.
        ---
        get:
          tags: [billing]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Topup}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.billing.get_topup(topup_id)

    @http("POST", f"{BASE}/webhooks/<provider>")
    def payment_webhook(self, request, provider):
        """A payment provider's signed notification (no session: the signature is checked).
        ---
        post:
          tags: [billing]
          parameters:
          - {in: path, name: provider, required: true,
             schema: {type: string, enum: [paypal, stripe, bank_wire, bitpay, coinbase, revolut]}}
          responses:
            200: {description: accepted (a repeated notification changes nothing)}
            400: {description: "bad or stale signature: nothing credited", content: {application/json: {schema: Error}}}
            404: {description: "no such payment provider", content: {application/json: {schema: Error}}}
        """
        # Unauthenticated: refuse a declared large body before reading it into memory.
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            raise ValidationFailed("The notification is too large.", fields={"body": ["At most 256 KiB."]})
        raw = request.get_data(cache=True)
        if len(raw) > MAX_WEBHOOK_BYTES:
            raise ValidationFailed("The notification is too large.", fields={"body": ["At most 256 KiB."]})
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(FORWARDED_HEADER_PREFIXES)}
        return self.cluster.slow.billing.receive_webhook(provider, headers, base64.b64encode(raw).decode())
