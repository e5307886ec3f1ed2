"""Schemas of the webhook endpoint routes (``routes/webhooks.py``)."""

from marshmallow import Schema, fields, validate

from gateway.schemas.common import PageQuerySchema, page_of


KINDS = ["operation_succeeded", "operation_failed", "order_completed", "payment_credited", "ticket_status_changed"]


class WebhookCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"pattern": "^https?://[^/?#]+", "format": "uri",
                                  "description": "https:// (a public address: private ones are refused)"})
    kinds = fields.List(fields.String(validate=validate.Length(min=1, max=40), metadata={"enum": KINDS}),
                        required=True, validate=validate.Length(min=1, max=len(KINDS)))
    description = fields.String(validate=validate.Length(max=200), allow_none=True)


class WebhookSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    kinds = fields.List(fields.String(), required=True)
    description = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"enum": ["active", "failing"],
                                                    "description": "failing: nothing accepted for 24 h"})
    created_at = fields.String(required=True)
    failing_since = fields.String(allow_none=True, required=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(required=True, metadata={"description": "the signing secret (whsec_…): shown this once"})


class DeliverySchema(Schema):
    id = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    event_id = fields.String(required=True, metadata={"description": "the body's id and the Panel-Event-Id header"})
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)
    created_at = fields.String(required=True)
    next_attempt_at = fields.String(allow_none=True, required=True)
    delivered_at = fields.String(allow_none=True, required=True)


class DeliveryQuerySchema(PageQuerySchema):
    pass


WebhookListSchema = page_of(WebhookSchema, "WebhookList")


DeliveryListSchema = page_of(DeliverySchema, "DeliveryList")
