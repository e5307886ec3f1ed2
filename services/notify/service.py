"""Entrypoints of the notify service (run: ``nameko run --config deploy/config/notify.yaml
services.notify.service:NotifyService``).

One reliable handler per source service consumes every integration event it publishes
(routing key ``#``: a durable queue, acked after the entry is committed, redeliveries
dropped by the inbox) and turns operation and login events into action-log entries and
webhook deliveries (``webhooks.py``). Each new entry is published as
``notification_created`` for the gateways to push live; a worker greenthread of the use
cases' dependency sends the webhook deliveries.
"""

from common.errors import Unauthenticated
from common.messaging import reliable_event_handler
from common.rpc import rpc
from common.service import PanelService, UseCases
from services.notify.dependencies import build
from services.notify.projections import schema

SOURCES = ("auth", "inventory", "orders", "storage", "billing", "support")


def _consumer(source):
    def consume(self, payload):
        self.notify.record(f"notify.{source}", payload)

    consume.__name__ = f"on_{source}_event"
    consume.__doc__ = f"Every integration event of {source}: operation and login events become entries."
    return reliable_event_handler(source, "#")(consume)


class NotifyService(PanelService):
    name = "notify"
    schema = schema

    notify = UseCases(build)

    on_auth_event = _consumer("auth")
    on_inventory_event = _consumer("inventory")
    on_orders_event = _consumer("orders")
    on_storage_event = _consumer("storage")
    on_billing_event = _consumer("billing")
    on_support_event = _consumer("support")

    def _customer_and_session(self):
        values = self.call_context()
        if not values.get("user_id"):
            raise Unauthenticated()
        return values["user_id"], values.get("session_id")

    @rpc
    def list_notifications(self, scope="session", page=1, per_page=50, cursor=None):
        user_id, session_id = self._customer_and_session()
        return self.notify.list_notifications(user_id, session_id, scope, page, per_page, cursor)

    @rpc
    def notifications_after(self, position, limit=500):
        return self.notify.notifications_after(self._customer_and_session()[0], int(position), limit)

    @rpc
    def mark_read(self, ids=None, everything=False):
        self.notify.mark_read(self._customer_and_session()[0], ids, everything)

    # -- webhooks (services/notify/webhooks.py) ---------------------------------------------

    @rpc
    def create_webhook(self, url, kinds, description=None):
        return self.notify.webhooks.create_endpoint(self._customer_and_session()[0], url, kinds, description)

    @rpc
    def list_webhooks(self):
        return self.notify.webhooks.list_endpoints(self._customer_and_session()[0])

    @rpc
    def get_webhook(self, endpoint_id):
        return self.notify.webhooks.get_endpoint(self._customer_and_session()[0], endpoint_id)

    @rpc
    def delete_webhook(self, endpoint_id):
        self.notify.webhooks.delete_endpoint(self._customer_and_session()[0], endpoint_id)

    @rpc
    def list_webhook_deliveries(self, endpoint_id, page=1, per_page=50):
        return self.notify.webhooks.list_deliveries(self._customer_and_session()[0], endpoint_id, page, per_page)

    @rpc
    def send_test_webhook(self, endpoint_id):
        return self.notify.webhooks.send_test(self._customer_and_session()[0], endpoint_id)
