"""Catalog and order routes (API.md "Catalog and orders", R-INST, R-STOCK).

The catalogs are public (a visitor can browse offers); ordering needs a session. An order
answers 202 at once with the order and its operation; the saga runs in the orders service.
"""

from gateway.http import http, idempotency_key, load_json, load_query
from gateway.idempotency import idempotent
from gateway.schemas import (
    InstantCatalogQuerySchema,
    OrderCreateSchema,
    OrderQuerySchema,
    StockCatalogQuerySchema,
)


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
        query = load_query(request, InstantCatalogQuerySchema)
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
        query = load_query(request, StockCatalogQuerySchema)
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
        return self.cluster.orders.list_orders(**load_query(request, OrderQuerySchema))

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
