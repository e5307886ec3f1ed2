"""Entrypoints of the inventory service (run: ``nameko run --config
deploy/config/inventory.yaml services.inventory.service:InventoryService``).

Customer calls come through the gateway, which sets the customer in the call context; a
server of another customer is ``not_found``. Server actions are operations: accepted at
once, carried out by ``carry_out`` from this service's own published
``operation_requested`` (a durable queue, acked after the work), so they survive a crash.
Billing's ``invoice_overdue`` and ``invoice_paid`` are applied once each (the inbox), in
any order (the ``Server`` aggregate ignores stale invoice facts).
"""

from common.messaging import operation_worker, reliable_event_handler
from common.rpc import rpc
from common.service import PanelService, UseCases
from services.inventory import domain
from services.inventory.dependencies import build
from services.inventory.projections import schema
from services.inventory.usecases import check_list_arguments


class InventoryService(PanelService):
    name = "inventory"
    schema = schema

    inventory = UseCases(build)

    @rpc
    def list_servers(self, location=None, status=None, q=None, sort="number", order="asc", page=1, per_page=50,
                     cursor=None):
        check_list_arguments(location, status, sort, order, page, per_page)
        return self.inventory.list_servers(self._customer(), location, status, q, sort, order, page, per_page,
                                           cursor)

    @rpc
    def export_page(self, location=None, status=None, q=None, after_number=None, limit=1000):
        return self.inventory.export_page(self._customer(), location, status, q, after_number, limit)

    @rpc
    def get_server(self, server_id):
        return self.inventory.get_server(self._customer(), server_id)

    @rpc
    def server_summary(self, server_id):
        """The customer's server as lists show it, without asking its BMC (for other
        services: support links a ticket to it)."""
        return self.inventory.server_summary(self._customer(), server_id)

    @rpc
    def set_tag(self, server_id, tag):
        return self.inventory.set_tag(self._customer(), server_id, tag)

    @rpc
    def request_action(self, server_id, action, os=None):
        return self.inventory.request_action(self._customer(), server_id, action, os)

    @rpc
    def os_images(self):
        return domain.os_images()

    @rpc
    def provision_server(self, user_id, location, plan, hardware, ips, os, bmc, paid_until, price_month, tag=None,
                         server_id=None, power_on=False):
        """For the orders service and the demo seed (not exposed over HTTP); ``server_id``
        makes it idempotent, ``power_on`` delivers the machine powered on (Redfish)."""
        return self.inventory.provision_server(user_id, location, plan, hardware, ips, os, bmc, paid_until, price_month, tag,
                                        server_id, power_on)

    @rpc
    def set_overdue(self, server_id, overdue, paid_until=None):
        """A verdict without an invoice (the demo seed, operators); billing's invoices come
        as events."""
        return self.inventory.set_overdue(server_id, overdue, paid_until)

    @reliable_event_handler("billing", "invoice_overdue")
    def on_invoice_overdue(self, payload):
        """R-SRV-3: a renewal went unpaid; the server shows as overdue (once per event,
        never for an invoice already paid)."""
        self.inventory.invoice_overdue("inventory.on_invoice_overdue", payload)

    @reliable_event_handler("billing", "invoice_paid")
    def on_invoice_paid(self, payload):
        """A renewal was paid: clears overdue, extends ``paid_until`` (never backwards)."""
        self.inventory.invoice_paid("inventory.on_invoice_paid", payload)

    @operation_worker("inventory", "server.")
    def carry_out(self, operation):
        self.inventory.carry_out(operation["operation_id"])
