"""Marshmallow schemas of the gateway's API; the OpenAPI document is generated from them."""

from marshmallow import Schema, fields


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "snake_case error code"})
    message = fields.String(required=True)
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "validation errors by field (validation_error only)"},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.String(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not_ready"})
    broker = fields.String(required=True)
    services = fields.Dict(keys=fields.String(), values=fields.String())
    missing = fields.List(fields.String())


class OperationSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "running", "succeeded", "failed"]})
    title = fields.String(required=True)
    detail = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    finished_at = fields.String(allow_none=True)


SCHEMAS = {
    "Error": ErrorSchema,
    "Health": HealthSchema,
    "Ready": ReadySchema,
    "Operation": OperationSchema,
}
