"""Schemas of the liveness and readiness answers (``routes/health.py``)."""

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not_ready"})
    broker = fields.String(required=True)
    services = fields.Dict(keys=fields.String(), values=fields.String())
    missing = fields.List(fields.String())
