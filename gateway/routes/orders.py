"""Catalog and order routes (API.md "Catalog and orders", R-INST, R-STOCK).

The catalogs are public (a visitor can browse offers); ordering needs a session. An order
answers 202 at once with the order and its operation; the saga runs in the orders service.
"""

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway.http import http, idempotency_key, load_json
from gateway.idempotency import idempotent
from gateway.schemas import (
    NEXT_CURSOR,
    OPAQUE_NEWEST_FIRST_CURSOR,
    OS_IMAGES,
    OperationSchema,
    PageQuerySchema,
    page_of,
)
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


SCHEMAS = {
    "InstantCatalogQuery": InstantCatalogQuerySchema,
    "StockCatalogQuery": StockCatalogQuerySchema,
    "Offer": OfferSchema,
    "OfferList": OfferListSchema,
    "OrderCreate": OrderCreateSchema,
    "Order": OrderSchema,
    "OrderAccepted": OrderAcceptedSchema,
    "OrderQuery": OrderQuerySchema,
    "OrderList": OrderListSchema,
}


class OrderRoutes:
    @http("GET", "/api/v1/catalog/instant")
    def instant_catalog(self, request):
        """Instant offers in a category, with the units left (R-INST-2).
        ---
        get:
          tags: [orders]
          parameters:
          - {in: query, schema: InstantCatalogQuerySchema}
          responses:
            200: {content: {application/json: {schema: OfferList}}}
        """
        query = InstantCatalogQuerySchema().load(request.args.to_dict())
        return self.cluster.orders.catalog("instant", query["category"], query.get("location"))

    @http("GET", "/api/v1/catalog/stock")
    def stock_catalog(self, request):
        """Stock offers in a category, with the units left and their delivery date (R-STOCK-2/3).
        ---
        get:
          tags: [orders]
          parameters:
          - {in: query, schema: StockCatalogQuerySchema}
          responses:
            200: {content: {application/json: {schema: OfferList}}}
        """
        query = StockCatalogQuerySchema().load(request.args.to_dict())
        return self.cluster.orders.catalog("stock", query["category"], query.get("location"))

    @http("POST", "/api/v1/orders")
    def place_order(self, request):
        """Order an offer: 202 with the order and its operation (R-INST-1, R-STOCK-1).
        ---
        post:
          tags: [orders]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200},
             description: "the same key again answers the first order, placing nothing new"}
          requestBody: {content: {application/json: {schema: OrderCreate}}}
          responses:
            202: {content: {application/json: {schema: OrderAccepted}}}
            400: {description: "unknown offer, wrong location or OS", content: {application/json: {schema: Error}}}
            409: {description: "insufficient_funds or out_of_stock", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, OrderCreateSchema())
        key = idempotency_key(request)
        accepted = self.cluster.orders.place_order(body["offer_id"], body["location"], body["os"], body.get("tag"),
                                                   idempotency_key=key)
        return 202, accepted

    @http("GET", "/api/v1/orders")
    def list_orders(self, request):
        """The customer's orders, newest first.
        ---
        get:
          tags: [orders]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: OrderQuerySchema}
          responses:
            200: {content: {application/json: {schema: OrderList}}}
            400: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.orders.list_orders(**OrderQuerySchema().load(request.args.to_dict()))

    @http("GET", "/api/v1/orders/<order_id>")
    def get_order(self, request, order_id):
        """One order and its state.
        ---
        get:
          tags: [orders]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Order}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.orders.get_order(order_id)

    @http("POST", "/api/v1/orders/<order_id>/cancel")
    @idempotent
    def cancel_order(self, request, order_id):
        """Withdraw an order before its delivery started (a stock server waiting for its date):
        the charge goes back to the balance and the unit to the shelf.
        ---
        post:
          tags: [orders]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Order}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: "order_not_cancellable: delivered, ended or being delivered",
                  content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.orders.cancel_order(order_id)
