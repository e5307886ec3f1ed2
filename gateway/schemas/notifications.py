"""Schemas of the notification routes (``routes/notifications.py``)."""

from marshmallow import Schema, fields, validate

from gateway.schemas.common import NEWEST_FIRST_CURSOR, NEXT_CURSOR, PageQuerySchema, page_of


class NotificationQuerySchema(PageQuerySchema):
    scope = fields.String(load_default="session", validate=validate.OneOf(["session", "all"]))
    cursor = NEWEST_FIRST_CURSOR


class NotificationSchema(Schema):
    id = fields.String(required=True)
    position = fields.Integer(required=True, metadata={"description": "its Server-Sent Events id"})
    operation_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    level = fields.String(required=True, metadata={"enum": ["info", "success", "error"]})
    title = fields.String(required=True)
    body = fields.String(required=True)
    created_at = fields.String(required=True)
    read = fields.Boolean(required=True)


NotificationListSchema = page_of(NotificationSchema, "NotificationListSchema",
                                 unread=fields.Integer(required=True, metadata={"description": "unread entries in scope"}),
                                 next_cursor=NEXT_CURSOR)


class MarkReadSchema(Schema):
    OPENAPI_RULES = {"anyOf": [{"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
                               {"required": ["all"], "properties": {"all": {"enum": [True]}}}]}

    ids = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=500))
    all = fields.Boolean()
