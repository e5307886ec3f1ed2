"""Schemas of the catalog and order routes (``routes/orders.py``)."""

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway.schemas.common import (
    NEXT_CURSOR,
    OPAQUE_NEWEST_FIRST_CURSOR,
    OperationSchema,
    PageQuerySchema,
    page_of,
)
from services.inventory.domain import OS_IMAGES
from services.orders.catalog import CATEGORIES


# placed → paid → completed; failing → failed (compensated); cancelling → cancelled (the customer's cancel)
ORDER_STATUSES = ("placed", "paid", "failing", "cancelling", "completed", "failed", "cancelled")


LOCATION = validate.Regexp(r"^[A-Z]{2}$", error="A two-letter location code such as NL.")


class CatalogQuerySchema(Schema):
    """A catalog's filters: a category of that catalog's, and a location (an offer list,
    so a location without offers is simply an empty list)."""

    class Meta:
        unknown = EXCLUDE

    location = fields.String(validate=LOCATION, metadata={"description": "NL, US, …"})


class InstantCatalogQuerySchema(CatalogQuerySchema):
    category = fields.String(load_default="all", validate=validate.OneOf(CATEGORIES["instant"]))


class StockCatalogQuerySchema(CatalogQuerySchema):
    category = fields.String(load_default="all", validate=validate.OneOf(CATEGORIES["stock"]))


class OfferSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["instant", "stock"]})
    name = fields.String(required=True)
    category = fields.String(required=True, metadata={"description": "the most specific category"})
    categories = fields.List(fields.String(), required=True, metadata={"description": "every category it is in"})
    cpu = fields.String(required=True, metadata={"example": "1× AMD Ryzen 5 3600 (6 cores)"})
    ram_gb = fields.Integer(required=True)
    disk = fields.String(required=True)
    gpu = fields.String(allow_none=True)
    virtual = fields.Boolean(required=True)
    location = fields.String(required=True)
    price_month = fields.String(required=True)
    currency = fields.String(required=True)
    available = fields.Integer(required=True, metadata={"description": "units left"})
    deploy_eta = fields.String(metadata={"description": "stock only: when an order placed now is delivered"})


OfferListSchema = page_of(OfferSchema, "OfferList")


class OrderCreateSchema(Schema):
    offer_id = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"description": "an offer of GET /catalog/instant or /catalog/stock"})
    location = fields.String(required=True, validate=LOCATION, metadata={"description": "the offer's location"})
    os = fields.String(required=True, validate=validate.Length(min=1, max=40),
                       metadata={"enum": list(OS_IMAGES), "description": "GET /os-images"})
    tag = fields.String(allow_none=True, validate=validate.Length(max=64))


class OrderSchema(Schema):
    id = fields.String(required=True)
    offer_id = fields.String(required=True)
    kind = fields.String(required=True)
    name = fields.String(required=True)
    location = fields.String(required=True)
    os = fields.String(required=True)
    tag = fields.String(allow_none=True)
    price_month = fields.String(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(ORDER_STATUSES)})
    operation_id = fields.String(required=True)
    deploy_eta = fields.String(allow_none=True)
    server_id = fields.String(allow_none=True, metadata={"description": "the delivered server (completed)"})
    reason = fields.String(allow_none=True, metadata={"description": "why it failed"})
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)


class OrderAcceptedSchema(Schema):
    order = fields.Nested(OrderSchema, required=True)
    operation = fields.Nested(OperationSchema, required=True)


OrderListSchema = page_of(OrderSchema, "OrderList", next_cursor=NEXT_CURSOR)


class OrderQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    cursor = OPAQUE_NEWEST_FIRST_CURSOR
