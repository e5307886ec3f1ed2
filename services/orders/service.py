"""Entrypoints of the orders service (run: ``nameko run --config deploy/config/orders.yaml
services.orders.service:OrdersService``).

Customer calls take the customer from the call context. An accepted order's saga runs from
this service's own published ``operation_requested`` (a durable queue, acked after the
work), and a scheduler moves on whatever is due: stock deploy dates, retries, sagas a crash
interrupted. Both only advance the order as far as its recorded state allows, so running
them twice, or on two replicas, does each step once.
"""

from common.messaging import operation_worker
from common.rpc import TimedClusterRpcProxy, rpc
from common.service import PanelService, UseCases
from common.timers import configured_timer
from services.orders.dependencies import build, read_catalog
from services.orders.projections import schema


class OrdersService(PanelService):
    name = "orders"
    schema = schema

    orders = UseCases(build, prepare=read_catalog)
    cluster = TimedClusterRpcProxy()

    @rpc
    def catalog(self, kind, category="all", location=None):
        """Offers of the ``instant`` or ``stock`` catalog in ``category``, with units available."""
        return self.orders.catalog(kind, category, location)

    @rpc
    def place_order(self, offer_id, location, os, tag=None, idempotency_key=None):
        """Accept an order: ``{"order", "operation"}`` (409 insufficient_funds / out_of_stock)."""
        return self.orders.place_order(self.cluster, self._customer(), offer_id, location, os, tag, idempotency_key)

    @rpc
    def list_orders(self, status=None, page=1, per_page=50, cursor=None):
        return self.orders.list_orders(self._customer(), status, page, per_page, cursor)

    @rpc
    def get_order(self, order_id):
        return self.orders.get_order(self._customer(), order_id)

    @rpc
    def cancel_order(self, order_id):
        """Withdraw an order before its delivery started (refund, unit released)."""
        return self.orders.cancel_order(self.cluster, self._customer(), order_id)

    @rpc
    def run_scheduler(self):
        """Advance every order that is due now (the timer does it every ORDER_SCHEDULER_SECONDS)."""
        return self.orders.run_scheduler(self.cluster)

    @configured_timer("ORDER_SCHEDULER_SECONDS", 5)
    def scheduler(self):
        self.orders.run_scheduler(self.cluster)

    @operation_worker("orders", "order.")
    def carry_out(self, operation):
        """Start an accepted order's saga."""
        self.orders.advance(self.cluster, operation["params"]["order_id"])
