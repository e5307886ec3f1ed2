"""Entrypoints of the support service (run: ``nameko run --config deploy/config/support.yaml
services.support.service:SupportService``).

Customer calls come through the gateway, which sets the customer in the call context;
another customer's request or attachment is ``not_found``. Staff calls (``staff_*``) come
from the staff tool (``python -m services.support.staff``) and are refused when a
customer's context travels with them, so no customer route can reach them by mistake.
Linking a server asks inventory (with the customer's context) whether it is theirs.
"""

from nameko.timer import timer

from common.errors import Forbidden
from common.rpc import TimedClusterRpcProxy, rpc
from common.service import PanelService, UseCases
from services.support import domain
from services.support.dependencies import build
from services.support.projections import schema

SWEEP_SECONDS = 3600


class SupportService(PanelService):
    name = "support"
    schema = schema

    support = UseCases(build)
    cluster = TimedClusterRpcProxy()

    def _staff(self):
        if self.call_context().get("user_id"):
            raise Forbidden("Staff methods are not for customers.")

    # -- customers (through the gateway) ---------------------------------------------------

    @rpc
    def list_tickets(self, status="all", page=1, per_page=50, cursor=None):
        return self.support.list_tickets(self._customer(), status, page, per_page, cursor)

    @rpc
    def get_ticket(self, ticket_id):
        return self.support.get_ticket(self._customer(), ticket_id)

    @rpc
    def stage_attachment(self, filename, content_type, data_base64):
        """One file for a request or reply to come: ``{"upload_id", "filename", "content_type", "size"}``."""
        return self.support.stage_upload(self._customer(), filename, content_type, data_base64)

    @rpc
    def open_ticket(self, subject, description, server_id=None, uploads=(), idempotency_key=None):
        user_id = self._customer()
        return self.support.open_ticket(user_id, subject, description, server_id, uploads, idempotency_key,
                                        find_server=self.cluster.inventory.server_summary)

    @rpc
    def add_message(self, ticket_id, body, uploads=(), idempotency_key=None):
        return self.support.add_message(self._customer(), ticket_id, body, uploads, idempotency_key)

    @rpc
    def close_ticket(self, ticket_id):
        return self.support.change_status(self._customer(), ticket_id, "close", domain.CUSTOMER)

    @rpc
    def reopen_ticket(self, ticket_id):
        return self.support.change_status(self._customer(), ticket_id, "reopen", domain.CUSTOMER)

    @rpc
    def read_attachment(self, ticket_id, attachment_id):
        """``{"id", "filename", "content_type", "size", "data_base64"}``."""
        return self.support.read_attachment(self._customer(), ticket_id, attachment_id)

    # -- staff (the staff tool; never routed by the gateway) -------------------------------

    @rpc
    def staff_list_tickets(self, status="open", page=1, per_page=50):
        self._staff()
        return self.support.list_tickets(None, status, page, per_page)

    @rpc
    def staff_get_ticket(self, ticket_id):
        self._staff()
        return self.support.get_ticket(None, ticket_id)

    @rpc
    def staff_reply(self, ticket_id, staff_name, body, uploads=()):
        """Answer as ``staff_name``; ``uploads`` from ``staff_stage_attachment``."""
        self._staff()
        return self.support.staff_reply(ticket_id, staff_name, body, uploads)

    @rpc
    def staff_stage_attachment(self, filename, content_type, data_base64):
        """One file for a staff reply to come: ``{"upload_id", "filename", "content_type", "size"}``."""
        self._staff()
        return self.support.stage_staff_upload(filename, content_type, data_base64)

    @rpc
    def staff_close_ticket(self, ticket_id, staff_name):
        self._staff()
        return self.support.change_status(None, ticket_id, "close", domain.STAFF, staff_name)

    @rpc
    def staff_reopen_ticket(self, ticket_id, staff_name):
        self._staff()
        return self.support.change_status(None, ticket_id, "reopen", domain.STAFF, staff_name)

    @rpc
    def sweep_uploads(self):
        """Delete uploads never attached within SUPPORT_UPLOAD_TTL_SECONDS (the timer does it hourly)."""
        self._staff()
        return self.support.sweep_uploads()

    @timer(interval=SWEEP_SECONDS)
    def sweep_timer(self):
        self.support.sweep_uploads()
