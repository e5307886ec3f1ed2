"""What every area of the API shares: the list envelope (``page_of``), paging and cursor
parameters, the error envelope and operations."""

from marshmallow import EXCLUDE, Schema, fields, validate

from common.paging import MAX_PAGE, MAX_PER_PAGE


def page_of(item_schema, name, **extra):
    """The list envelope of API.md: ``{"items", "total", "page", "per_page"}`` (+ ``extra``)."""
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        **extra,
    }, name=name)


class PageQuerySchema(Schema):
    """``page`` and ``per_page`` of every list (API.md; the services check the same bounds,
    ``common.paging``). List query schemas add their filters to it."""

    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


NEWEST_FIRST_CURSOR = fields.String(validate=validate.Regexp(r"^[0-9]{1,20}$"), metadata={
    "description": "the previous answer's `next_cursor`: older entries at the same cost however far back "
                   "(`page` still works, slower the deeper it goes)"})
# Lists ordered by a time and an id (orders, support requests): the cursor is an opaque
# position, refused (400 naming ``cursor``) unless one of the list's own ``next_cursor``s.
OPAQUE_NEWEST_FIRST_CURSOR = fields.String(validate=validate.Length(min=1, max=500), metadata={
    "description": "the previous answer's `next_cursor` (opaque): older entries at the same cost however far "
                   "back (`page` still works, slower the deeper it goes)"})
NEXT_CURSOR = fields.String(required=True, allow_none=True, metadata={
    "description": "pass as `cursor` for the older entries; null: the oldest page"})


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "snake_case error code"})
    message = fields.String(required=True)
    # The members some errors carry besides code and message (common.errors ``extra``):
    retry_after = fields.Integer(metadata={"description": "rate_limited: seconds to wait (also Retry-After)"})
    balance = fields.String(metadata={"description": "insufficient_funds: the balance", "example": "12.00"})
    amount = fields.String(metadata={"description": "insufficient_funds: the amount it does not cover"})
    status = fields.String(metadata={"description": "invalid_transition: the resource's status now"})
    offer_id = fields.String(metadata={"description": "out_of_stock: the offer that is sold out"})
    required_scope = fields.String(metadata={"description": "forbidden: the scope the API token lacks"})
    service = fields.String(metadata={"description": "unavailable: the part that is not answering"})
    fields = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "validation errors by field (validation_error; a nested field by its path, "
                                 "e.g. `attachments.0`)"},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.String(required=True)


class OperationSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "running", "succeeded", "failed"]})
    title = fields.String(required=True)
    detail = fields.String(allow_none=True)
    target = fields.String(allow_none=True)
    service = fields.String(required=True, metadata={"description": "the service that runs it"})
    created_at = fields.String(required=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)


class OperationAcceptedSchema(Schema):
    operation = fields.Nested(OperationSchema, required=True)
