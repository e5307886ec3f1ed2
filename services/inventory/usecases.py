"""The inventory service's use cases: lists, details, tags, and server actions as operations.

Every query and command takes the customer (``user_id``) from the caller, and a server that
is not theirs is ``NotFound`` — exactly like one that does not exist. BMC calls happen in
the operation's work, never inside a database transaction.
"""

import time

import eventlet

from common import context
from common.errors import (
    ConcurrencyConflict,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import retrying
from common.operations import OperationFailed
from common.paging import page_problems
from services.inventory import domain
from services.inventory.adapters import BmcError, BmcUnavailable
from services.inventory.adapters.factory import bmc_for
from services.inventory.projections import (
    list_rows,
    next_number,
    rows_after,
    server_of,
)

POWER_CACHE_SECONDS = 10
# A page's live power read gives up after this long (well inside the gateway's 5 s RPC limit).
LIVE_READ_SECONDS = 2


def list_item(row):
    """A server as lists show it (API.md "Servers")."""
    return {
        "id": row["server_id"], "number": row["number"], "tag": row["tag"], "ip": row["primary_ip"],
        "location": row["location"], "status": row["status"], "power": row["power"], "plan": row["plan"],
        "paid_until": row["paid_until"],
    }


class InventoryUseCases:
    def __init__(self, store, operations, clock, config, observe=None):
        self.store = store
        self.operations = operations
        self.clock = clock
        self.config = config
        self.observe = observe
        self.image_base_url = config.get("OS_IMAGE_BASE_URL", "http://images.panel.local/os")
        self.power_wait_seconds = float(config.get("BMC_POWER_WAIT_SECONDS", 60))
        self.live_read_seconds = float(config.get("BMC_LIVE_READ_SECONDS") or LIVE_READ_SECONDS)
        self._power_cache = {}  # server_id -> (power, fetched_at)

    # -- reading ---------------------------------------------------------------------------

    def _load(self, server_id, user_id=None):
        server = self.store.get(domain.Server, server_id)
        if not server.exists or (user_id is not None and server.user_id != user_id):
            raise NotFound("No such server.")
        return server

    def _row(self, server_id, user_id):
        row = self.store.read(server_of, user_id, server_id)
        if row is None:
            raise NotFound("No such server.")
        return row

    def list_servers(self, user_id, location=None, status=None, q=None, sort="number", order="asc",
                     page=1, per_page=50, cursor=None):
        """A page of the customer's servers: by ``cursor`` (the previous page's
        ``next_cursor``: the same cost however deep) or by ``page``."""
        try:
            rows, total, next_cursor = self.store.read(list_rows, user_id, location, status, q, sort, order == "desc",
                                                       per_page, (page - 1) * per_page, cursor)
        except ValueError as error:
            raise ValidationFailed("Bad cursor.", fields={"cursor": [f"{error}."]})
        return {"items": [list_item(r) for r in rows], "total": total, "page": page, "per_page": per_page,
                "next_cursor": next_cursor}

    def export_page(self, user_id, location=None, status=None, q=None, after_number=None, limit=1000):
        """One page of an export, in number order after ``after_number``."""
        rows = self.store.read(rows_after, user_id, location, status, q, after_number, min(limit, 5000))
        return [dict(list_item(r), os=r["os"], ips=r["ips"], price_month=r["price_month"]) for r in rows]

    def get_server(self, user_id, server_id):
        row = self._row(server_id, user_id)
        power, source = self._live_power(row)
        name = domain.OS_IMAGES.get(row["os"], (row["os"],))[0]
        return dict(
            list_item(row), power=power, power_source=source, hardware=row["hardware"], ips=row["ips"],
            os={"id": row["os"], "name": name}, price_month=row["price_month"],
            recent_operations=self.operations.recent(server_id, user_id),
        )

    def server_summary(self, user_id, server_id):
        """The server as lists show it, from the read model only (no BMC call): for other
        services checking that a server is the customer's."""
        return list_item(self._row(server_id, user_id))

    def _live_power(self, row):
        """The BMC's power state, cached a few seconds; the last known one when the BMC
        does not answer within ``BMC_LIVE_READ_SECONDS`` (a page waits for it: one slow BMC
        must not turn the server's page into a 503 at the gateway's RPC time limit)."""
        cached = self._power_cache.get(row["server_id"])
        if cached and time.monotonic() - cached[1] < POWER_CACHE_SECONDS:
            return cached[0], "bmc"
        power = None
        with eventlet.Timeout(self.live_read_seconds, False):
            try:
                power = bmc_for(row["bmc"], self.config, self.observe).power_state()
            except BmcError:
                pass  # unreachable, refused, or no credentials: the last known state
        if power is None:
            return row["power"], "last_known"
        self._power_cache[row["server_id"]] = (power, time.monotonic())
        return power, "bmc"

    # -- commands --------------------------------------------------------------------------

    def set_tag(self, user_id, server_id, tag):
        server = self._load(server_id, user_id)
        events = server.retag(tag)
        if events:
            self.store.save(server, events)
        return list_item(self._row(server_id, user_id))

    def provision_server(self, user_id, location, plan, hardware, ips, os, bmc, paid_until, price_month, tag=None,
                  server_id=None, power_on=False):
        """Create a server for a customer (orders, the demo seed); numbers are sequential.

        ``server_id``, when the caller chooses it (orders: one per order), makes a repeated
        call — a retry after a time-out — return the server the first call created.
        ``power_on`` delivers the machine through its BMC before it is handed over: the
        installer of ``os`` inserted as virtual media and the machine booted from it once
        (the installation then runs on the server), and it is on. A BMC that does not answer
        is ``unavailable`` (worth retrying), one that refuses is a ``bmc_error`` conflict."""
        if server_id is not None:
            existing = self.store.get(domain.Server, server_id)
            if existing.exists:
                return self._existing(existing, user_id)
        server_id = server_id or context.new_id()
        check = dict(user_id=user_id, location=location, plan=plan, hardware=hardware, ips=ips, os=os, bmc=bmc,
                     paid_until=paid_until, price_month=price_month, tag=tag)
        domain.Server.provision(server_id, number="check", **check)  # refuse bad input before any BMC call
        if power_on:
            self._deliver(bmc, os)
        try:
            with self.store.transaction() as tx:
                tx.lock_log()
                events = domain.Server.provision(server_id, number=next_number(tx.conn), **check)
                tx.create(domain.Server, server_id, events)
        except ConcurrencyConflict:  # the same delivery, done concurrently
            return self._existing(self.store.get(domain.Server, server_id),
                                  user_id)
        return list_item(self._row(server_id, user_id))

    def _existing(self, server, user_id):
        if server.user_id != user_id:
            raise error_with_code(Conflict, "server_id_taken", "That server id belongs to another server.")
        return list_item(self._row(server.server_id, user_id))

    def _deliver(self, binding, os):
        try:
            client = bmc_for(binding, self.config, self.observe)
            client.reinstall(f"{self.image_base_url}/{domain.OS_IMAGES[os][1]}")
            client.wait_for_power("on", self.power_wait_seconds)
        except BmcUnavailable as error:
            raise ServiceUnavailable(str(error), extra={"service": "bmc"})
        except BmcError as error:
            raise error_with_code(Conflict, "bmc_error", str(error))

    def set_overdue(self, server_id, overdue, paid_until=None, reason="invoice unpaid"):
        """A verdict without an invoice (demo seed, operators): mark a server overdue, or
        paid (clearing overdue; ``paid_until`` only ever moves forward)."""
        server = self._load(server_id)
        events = server.mark_overdue(reason) if overdue else server.mark_paid(paid_until)
        if events:
            self.store.save(server, events)

    def invoice_overdue(self, consumer, envelope):
        """Billing's ``invoice_overdue`` (R-SRV-3), once per event; stale when its invoice
        was paid already."""
        invoice = envelope["data"]
        self._apply_invoice_fact(consumer, envelope, lambda server: server.mark_overdue(
            "invoice unpaid", invoice_id=invoice["invoice_id"]))

    def invoice_paid(self, consumer, envelope):
        """Billing's ``invoice_paid``, once per event; ``paid_until`` never moves back."""
        invoice = envelope["data"]
        self._apply_invoice_fact(consumer, envelope, lambda server: server.mark_paid(
            invoice["paid_until"], invoice_id=invoice["invoice_id"]))

    def _apply_invoice_fact(self, consumer, envelope, decide):
        """Record the event in the inbox and ``decide(server)``'s events in one transaction
        (a redelivery does nothing); a concurrent append to the server is retried at once."""
        server_id = envelope["data"]["server_id"]

        def attempt():
            with self.store.transaction() as tx:
                if not tx.record_inbox(consumer, envelope["event_id"]):
                    return  # a redelivery: already applied
                server = tx.get(domain.Server, server_id)
                if not server.exists:
                    raise NotFound("No such server.")
                tx.save(server, decide(server))

        retrying(attempt)

    def request_action(self, user_id, server_id, action, os=None):
        """Accept an action as an operation (202 at the gateway); the work runs later."""
        server = self._load(server_id, user_id)
        operation_id, earlier = self.operations.id_for(f"server.{action}", server_id, user_id)
        if earlier is not None:  # the same command again (Idempotency-Key): the operation it started
            return earlier
        events = server.request_action(action, operation_id, os)
        with self.store.transaction() as tx:
            tx.save(server, events)
            return self.operations.request(
                tx, kind=f"server.{action}", target=server_id, title=server.title_of(action, os),
                params={"action": action, "os": os}, user_id=user_id, operation_id=operation_id)

    def carry_out(self, operation_id):
        """Do an accepted server action against the BMC; record the outcome on the server in
        the same transaction as the operation's result."""
        return self.operations.run(operation_id, self._work, also=self._finish)

    def _work(self, view):
        server = self._load(view["target"])
        action, os = view["params"]["action"], view["params"].get("os")
        try:
            bmc = bmc_for(server.bmc, self.config, self.observe)
            if action == "power_on":
                bmc.power_on()
                bmc.wait_for_power("on", self.power_wait_seconds)
                return f"{server.number} is powered on.", {"power": "on"}
            if action == "power_off":
                bmc.power_off()
                bmc.wait_for_power("off", self.power_wait_seconds)
                return f"{server.number} is powered off.", {"power": "off"}
            if action == "reboot":
                bmc.reboot()
                bmc.wait_for_power("on", self.power_wait_seconds)
                return f"{server.number} has rebooted.", {"power": "on"}
            name, image = domain.OS_IMAGES[os]
            bmc.reinstall(f"{self.image_base_url}/{image}")
            return (f"{server.number} is booting the {name} installer; the installation continues on the server.",
                    {"power": "on", "os": os})
        except BmcError as error:
            raise OperationFailed(str(error))
        finally:
            self._power_cache.pop(server.server_id, None)

    def _finish(self, tx, view):
        server = tx.get(domain.Server, view["target"])
        result = view.get("result") or {}
        events = server.finish_action(view["operation_id"], view["status"] == "succeeded",
                                      power=result.get("power"), os=result.get("os"))
        if events:
            tx.save(server, events)


def check_list_arguments(location, status, sort, order, page, per_page):
    """Validation shared by the RPC and the gateway's schema (defence in depth)."""
    problems = {}
    if status is not None and status not in domain.STATUSES:
        problems["status"] = [f"One of {', '.join(domain.STATUSES)}."]
    if sort not in ("number", "location", "status", "paid_until", "tag"):
        problems["sort"] = ["One of number, location, status, paid_until, tag."]
    if order not in ("asc", "desc"):
        problems["order"] = ["asc or desc."]
    problems.update(page_problems(page, per_page))
    if problems:
        raise ValidationFailed("The list request is invalid.", fields=problems)
