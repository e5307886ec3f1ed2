"""Webhook endpoints (issue 19): where the customer's own systems hear of finished
operations, completed orders, credited payments and ticket status changes — signed POSTs
delivered at least once by the notify service (``services/notify/webhooks.py``, which
says how to verify the ``Panel-Signature`` header)."""

from gateway.http import http, load_json, load_query
from gateway.idempotency import idempotent
from gateway.schemas import DeliveryQuerySchema, WebhookCreateSchema

BASE = "/api/v1/webhooks"


class WebhookRoutes:
    @http("POST", BASE)
    @idempotent
    def create_webhook(self, request):
        """Register a webhook endpoint; its signing secret is in this answer and never again.
        ---
        post:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {required: true, content: {application/json: {schema: WebhookCreate}}}
          responses:
            201: {content: {application/json: {schema: WebhookCreated}}}
            400: {description: "validation_error (not https, a private address, unknown kind, too many endpoints)", content: {application/json: {schema: Error}}}
            401: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, WebhookCreateSchema())
        created = self.cluster.notify.create_webhook(body["url"], body["kinds"], body.get("description"))
        return 201, {"Cache-Control": "no-store"}, created

    @http("GET", BASE)
    def list_webhooks(self, request):
        """The customer's webhook endpoints.
        ---
        get:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: WebhookList}}}
            401: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        items = self.cluster.notify.list_webhooks()
        return {"items": items, "total": len(items), "page": 1, "per_page": max(1, len(items))}

    @http("GET", f"{BASE}/<endpoint_id>")
    def get_webhook(self, request, endpoint_id):
        """One webhook endpoint.
        ---
        get:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Webhook}}}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.notify.get_webhook(endpoint_id)

    @http("DELETE", f"{BASE}/<endpoint_id>")
    @idempotent
    def delete_webhook(self, request, endpoint_id):
        """Delete a webhook endpoint: nothing more is sent to it.
        ---
        delete:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          responses:
            204: {description: deleted}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        self.cluster.notify.delete_webhook(endpoint_id)
        return 204, ""

    @http("GET", f"{BASE}/<endpoint_id>/deliveries")
    def list_webhook_deliveries(self, request, endpoint_id):
        """An endpoint's deliveries, newest first, with their attempts and the receiver's status codes.
        ---
        get:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: DeliveryQuerySchema}
          responses:
            200: {content: {application/json: {schema: DeliveryList}}}
            400: {content: {application/json: {schema: Error}}}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, DeliveryQuerySchema)
        return self.cluster.notify.list_webhook_deliveries(endpoint_id, query["page"], query["per_page"])

    @http("POST", f"{BASE}/<endpoint_id>/test")
    @idempotent
    def send_test_webhook(self, request, endpoint_id):
        """Send a `webhook_test` event to the endpoint now.
        ---
        post:
          tags: [webhooks]
          security: [{bearer: []}, {cookie: []}]
          responses:
            202: {content: {application/json: {schema: Delivery}}}
            401: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return 202, self.cluster.notify.send_test_webhook(endpoint_id)
