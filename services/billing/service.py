"""Entrypoints of the billing service (run: ``nameko run --config deploy/config/billing.yaml
services.billing.service:BillingService``).

Customer calls take the customer from the call context. Payment notifications arrive from
the gateway's webhook route with the raw body (base64) and headers, and are verified here.
A timer issues renewal invoices as the (adjustable) clock passes servers' paid periods.
"""

from nameko.timer import timer

from common.messaging import reliable_event_handler
from common.rpc import rpc
from common.service import PanelService, UseCases
from services.billing.adapters.methods import METHODS
from services.billing.dependencies import build
from services.billing.projections import schema


class BillingService(PanelService):
    name = "billing"
    schema = schema

    billing = UseCases(build)

    @rpc
    def get_account(self):
        return self.billing.account(self._customer())

    @rpc
    def list_invoices(self, status=None, page=1, per_page=50):
        return self.billing.list_invoices(self._customer(), status, page, per_page)

    @rpc
    def list_transactions(self, page=1, per_page=50, cursor=None):
        """The customer's statement: credits (top-ups, refunds) and debits (orders, renewals)."""
        return self.billing.list_transactions(self._customer(), page, per_page, cursor)

    @rpc
    def payment_methods(self):
        return [{"id": key, **value} for key, value in METHODS.items()]

    @rpc
    def create_topup(self, amount, method, idempotency_key=None):
        return self.billing.create_topup(self._customer(), amount, method, idempotency_key)

    @rpc
    def get_topup(self, topup_id):
        return self.billing.get_topup(self._customer(), topup_id)

    @rpc
    def receive_webhook(self, provider, headers, body_base64):
        """A payment provider's notification, as received by the gateway."""
        return self.billing.receive_webhook(provider, headers, body_base64)

    @rpc
    def charge(self, user_id, amount, reference, reason="order"):
        """For the orders service: take ``amount`` once per ``reference``, or ``insufficient_funds``."""
        return self.billing.charge(user_id, amount, reference, reason)

    @rpc
    def refund(self, user_id, reference):
        """Give back what ``reference`` was charged (once; nothing if it was never charged)."""
        return self.billing.refund(user_id, reference)

    @rpc
    def run_billing(self):
        """Resume unsettled invoices and issue due renewal invoices now (the timer does it
        every minute); how many were issued."""
        return self.billing.run_billing()

    @rpc
    def reconcile_topups(self):
        """Ask the providers about every top-up pending longer than
        ``TOPUP_RECONCILE_AFTER_SECONDS`` and settle what they say is final, now (the timer
        does it on a backing-off schedule); how many were settled."""
        return self.billing.reconcile_topups()

    @rpc
    def expire_topups(self):
        """Fail the top-ups unpaid for ``TOPUP_EXPIRY_HOURS`` now (the timer does it every minute)."""
        return self.billing.expire_topups()

    @timer(interval=60)
    def renewal_timer(self):
        """Renewals (resuming any a failure left unsettled), then unpaid top-ups."""
        self.billing.run_timer_jobs()

    @reliable_event_handler("inventory", "server_provisioned")
    def on_server_provisioned(self, payload):
        self.billing.subscribe("billing.on_server_provisioned", payload)
