"""Schemas of the support routes (``routes/support.py``): requests, replies, attachments."""

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway.schemas.common import NEXT_CURSOR, OPAQUE_NEWEST_FIRST_CURSOR, PageQuerySchema, page_of
from services.support import attachments as policy


STATUSES = ["open", "answered", "closed", "reopened"]


class TicketQuerySchema(PageQuerySchema):
    status = fields.String(load_default="all", validate=validate.OneOf(["open", "closed", "all"]),
                           metadata={"description": "open: every request not closed"})
    cursor = OPAQUE_NEWEST_FIRST_CURSOR


BINARY_FILES = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}),
                           metadata={"description": f"files, repeatable: at most {policy.MAX_FILES}, 10 MiB each and "
                                                    f"25 MiB together; types: {policy.allowed_list()}"})


class TicketTextSchema(Schema):
    """A request's text: the whole JSON body (files need multipart/form-data)."""

    class Meta:
        unknown = EXCLUDE

    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    server_id = fields.String(validate=validate.Length(max=64), allow_none=True,
                              metadata={"description": "one of the customer's servers this is about"})


class TicketCreateSchema(TicketTextSchema):
    attachments = BINARY_FILES


class MessageTextSchema(Schema):
    """A reply's text: the whole JSON body (files need multipart/form-data)."""

    class Meta:
        unknown = EXCLUDE

    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class MessageCreateSchema(MessageTextSchema):
    attachments = BINARY_FILES


class AttachmentSchema(Schema):
    id = fields.String(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "bytes"})


class MessageSchema(Schema):
    id = fields.String(required=True)
    author = fields.String(required=True, metadata={"enum": ["customer", "staff"]})
    staff_name = fields.String(allow_none=True)
    body = fields.String(required=True)
    created_at = fields.String(required=True)
    attachments = fields.List(fields.Nested(AttachmentSchema), required=True)


class TicketSchema(Schema):
    id = fields.String(required=True)
    subject = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": STATUSES})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True, metadata={"description": "the last message or status change"})
    server_id = fields.String(allow_none=True)
    server_number = fields.String(allow_none=True)
    messages = fields.Integer(metadata={"description": "how many messages"})
    last_author = fields.String(metadata={"enum": ["customer", "staff"]})


TicketListSchema = page_of(TicketSchema, "TicketListSchema", next_cursor=NEXT_CURSOR)


class TicketDetailSchema(TicketSchema):
    messages = fields.List(fields.Nested(MessageSchema), required=True, metadata={"description": "oldest first"})
    attachments = fields.List(fields.Nested(AttachmentSchema), required=True,
                              metadata={"description": "every attachment of every message"})


class MessageCreatedSchema(MessageSchema):
    ticket = fields.Nested(TicketSchema, required=True, metadata={"description": "the request after the reply"})


class AttachmentRulesSchema(Schema):
    max_file_bytes = fields.Integer(required=True)
    max_message_bytes = fields.Integer(required=True)
    max_files = fields.Integer(required=True)
    types = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
