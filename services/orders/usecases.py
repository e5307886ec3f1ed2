"""The orders service's use cases: the catalog with live availability, placing an order and
the saga that carries it out (services/orders/domain.py draws it).

Placing is synchronous and cheap: the offer and the customer's choices are checked, the
balance must cover the first month (``insufficient_funds`` before anything is reserved), and
one transaction reserves a unit (``out_of_stock`` when another order got the last one: the
stock stream's version decides), records the order and accepts its operation. The saga then
runs from this service's own published ``operation_requested`` (and from the scheduler, for
retries, stock deploy dates and anything a crash interrupted): charge through billing
(idempotent on the order), provision through inventory (idempotent on the server id the
order chooses), complete — or compensate: refund (idempotent too) and release the unit.
Other services are only called outside transactions.
"""

import logging
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from common import context
from common.errors import (
    ConcurrencyConflict,
    Conflict,
    NotFound,
    PanelError,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import retrying
from common.paging import page_problems
from services.orders import catalog as catalog_rules
from services.orders import domain
from services.orders.projections import (
    STATUSES,
    claimed_counts,
    due_order_ids,
    list_order,
    next_attempt_of,
    order_by_key,
    order_of,
    order_page,
)

log = logging.getLogger(__name__)

CURRENCY = "EUR"


def order_view(row):
    """An order as the API shows it."""
    return {
        "id": row["order_id"], "offer_id": row["offer_id"], "kind": row["kind"], "name": row["name"],
        "location": row["location"], "os": row["os"], "tag": row["tag"], "price_month": row["price_month"],
        "currency": CURRENCY, "status": row["status"], "operation_id": row["operation_id"],
        "deploy_eta": row["deploy_eta"], "server_id": row["server_id"],
        "reason": row["reason"] if row["status"] in ("failing", "failed", "cancelling", "cancelled") else None,
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def server_id_for(order_id):
    """The id of the server an order creates: chosen by the order, so asking inventory twice
    (a retry after a time-out) creates it once."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"hostpanel-order-{order_id}").hex


class OrdersUseCases:
    def __init__(self, store, operations, clock, config, offers):
        self.store = store
        self.operations = operations
        self.clock = clock
        self.offers = offers
        self.bmc_endpoint = config.get("BMC_ENDPOINT", "http://127.0.0.1:9205")
        self.holidays = frozenset(day.strip() for day in str(config.get("HOLIDAYS") or "").split(",") if day.strip())
        self.speedup = max(float(config.get("STOCK_DELIVERY_SPEEDUP", 1) or 1), 1.0)
        self.max_attempts = int(config.get("ORDER_MAX_ATTEMPTS", 5))
        self.retry_base_seconds = float(config.get("ORDER_RETRY_BASE_SECONDS", 5))
        self.provision_timeout = float(config.get("PROVISION_TIMEOUT_SECONDS", 120))

    # -- catalog -----------------------------------------------------------------------------

    def catalog(self, kind, category="all", location=None):
        if kind not in catalog_rules.KINDS:
            raise NotFound("No such catalog.")
        categories = catalog_rules.CATEGORIES[kind]
        problems = {}
        if category not in categories:
            problems["category"] = [f"One of {', '.join(categories)}."]
        # A location is a filter: one without offers is an empty list, not an error.
        if problems:
            raise ValidationFailed("Unknown filter.", fields=problems)
        claimed = self.store.read(claimed_counts)
        now = self.clock.now()
        items = []
        for offer in self.offers.values():
            if offer["kind"] != kind or category not in offer["categories"]:
                continue
            if location is not None and offer["location"] != location:
                continue
            item = {key: offer[key] for key in ("id", "name", "category", "categories", "cpu", "ram_gb", "disk", "gpu",
                                                "location", "price_month")}
            item.update(kind=kind, currency=CURRENCY, virtual=offer["virtual"],
                        available=len(offer["units"]) - claimed.get(offer["id"], 0))
            if kind == "stock":
                item["deploy_eta"] = self._deploy_eta(offer, now).isoformat()
            items.append(item)
        items.sort(key=lambda item: (item["location"], float(item["price_month"]), item["id"]))
        return {"items": items, "total": len(items), "page": 1, "per_page": max(len(items), 1)}

    def _deploy_eta(self, offer, now):
        return domain.add_business_days(now, offer["deploy_business_days"], self.holidays)

    # -- placing -----------------------------------------------------------------------------

    def place_order(self, cluster, user_id, offer_id, location, os, tag=None, idempotency_key=None):
        """Accept an order: ``{"order", "operation"}``; the saga runs afterwards."""
        asked = (offer_id, location, os, tag)
        if idempotency_key:
            existing = self._by_idempotency_key(user_id, idempotency_key, asked)
            if existing is not None:
                return existing
        offer = self.offers.get(offer_id)
        os_names = {image["id"] for image in cluster.inventory.os_images()}
        domain.check_order(offer, location, os, tag, os_names)
        account = cluster.billing.get_account()
        if Decimal(account["balance"]) < Decimal(offer["price_month"]):
            raise error_with_code(
                Conflict, "insufficient_funds",
                f"The balance ({account['balance']} {CURRENCY}) does not cover the first month "
                f"({offer['price_month']} {CURRENCY}).", balance=account["balance"], amount=offer["price_month"])
        order_id = context.new_id()
        for attempt in range(8):
            try:
                return self._reserve_and_record(user_id, order_id, offer, location, os, tag, idempotency_key)
            except ConcurrencyConflict:
                continue  # another order claimed a unit of this offer first: look again
            except IntegrityError:
                existing = idempotency_key and self._by_idempotency_key(user_id, idempotency_key, asked)
                if existing:
                    return existing  # the same order, retried concurrently
                raise
        raise ServiceUnavailable("Too many orders for this offer at once; try again.")

    def _reserve_and_record(self, user_id, order_id, offer, location, os, tag, idempotency_key):
        now = self.clock.now()
        eta = due = None
        if offer["kind"] == "stock":
            eta = self._deploy_eta(offer, now)
            due = now + (eta - now) / self.speedup
        with self.store.transaction() as tx:
            stock = tx.get(domain.Stock, offer["id"])
            unit, reserved = stock.reserve(order_id, offer["units"])
            operation_id = self.operations.new_id()
            tx.save(stock, reserved)
            tx.create(domain.Order, order_id, domain.Order.place(
                order_id, user_id=user_id, offer=offer, unit=unit, location=location, os=os, tag=tag,
                operation_id=operation_id, idempotency_key=idempotency_key, now=now, deploy_eta=eta,
                deploy_due_at=due))
            operation = self.operations.request(
                tx, kind=f"order.{offer['kind']}", target=order_id, title=domain.order_title(offer, location),
                params={"order_id": order_id}, user_id=user_id, operation_id=operation_id)
        return {"order": self.get_order(user_id, order_id), "operation": operation}

    def _by_idempotency_key(self, user_id, key, asked):
        """The answer of the order placed earlier with ``key``; None when there is none;
        ``idempotency_key_reused`` when that order was not the one ``asked`` now (offer,
        location, OS, tag)."""
        row = self.store.read(order_by_key, user_id, key)
        if row is None:
            return None
        if (row["offer_id"], row["location"], row["os"], row["tag"]) != asked:
            raise error_with_code(Conflict, "idempotency_key_reused",
                                  "This Idempotency-Key was used for a different order.")
        return {"order": order_view(row), "operation": self.operations.get(row["operation_id"])}

    # -- reading -----------------------------------------------------------------------------

    def get_order(self, user_id, order_id):
        row = self.store.read(order_of, user_id, order_id)
        if row is None:
            raise NotFound("No such order.")
        return order_view(row)

    def list_orders(self, user_id, status=None, page=1, per_page=50, cursor=None):
        """The customer's orders, newest first: by ``page``, or by ``cursor`` (the previous
        answer's ``next_cursor``: the orders older than its last one, at the same cost
        however far back)."""
        problems = {}
        if status is not None and status not in STATUSES:
            problems["status"] = [f"One of {', '.join(STATUSES)}."]
        problems.update(page_problems(page, per_page))
        try:
            before = list_order.position(cursor)
        except ValueError:
            problems["cursor"] = ["The next_cursor of an earlier answer."]
        if problems:
            raise ValidationFailed("Bad list arguments.", fields=problems)
        rows, total, next_cursor = self.store.read(order_page, user_id, status, page, per_page, before)
        return {"items": [order_view(row) for row in rows], "total": total, "page": page, "per_page": per_page,
                "next_cursor": next_cursor}

    # -- the saga ----------------------------------------------------------------------------

    def _load(self, order_id):
        order = self.store.get(domain.Order, order_id)
        if not order.exists:
            raise NotFound("No such order.")
        return order

    def advance(self, cluster, order_id):
        """Move an order on as far as it can go now; safe to call any number of times, from
        any replica (each step is recorded at the order's version)."""
        for _ in range(10):
            order = self._load(order_id)
            step = order.next_step(self.clock.now())
            if step is None or step == "wait":
                return order.status
            if order.attempts and not self._retry_due(order_id):
                return order.status  # waiting for its retry time
            self._start_operation(order)
            try:
                if step == "charge":
                    self._charge(cluster, order)
                elif step == "provision":
                    self._provision(cluster, order)
                elif step == "refund":
                    self._refund(cluster, order)
                else:
                    self._finish_failed(order)
            except ConcurrencyConflict:
                continue  # another worker moved it first: look again
            except ServiceUnavailable as error:
                reason = error.message
            except Exception:  # a bug or an answer nobody expected: counted like an outage, so
                # the order is compensated after its attempts instead of retried forever
                log.exception("an order step failed unexpectedly", extra={"order_id": order_id, "step": step})
                reason = "an internal error"
            else:
                continue
            order = self._load(order_id)  # the step may have recorded something first
            self._append(order, order.step_failed(step, reason, self.max_attempts, self.clock.now(),
                                                  self.retry_base_seconds))
            if self._load(order_id).status == order.status:
                return order.status
        return self._load(order_id).status

    def _retry_due(self, order_id):
        due = self.store.read(next_attempt_of, order_id)
        return due is None or datetime.fromisoformat(due) <= self.clock.now()

    def _start_operation(self, order):
        try:
            self.operations.start(order.operation_id)
        except Conflict:
            pass  # already running (or finished: the order's own state says what is left)

    def _append(self, order, events):
        if events:
            self.store.save(order, events)

    def _charge(self, cluster, order):
        try:
            cluster.billing.charge(order.user_id, order.price_month, order.reference, reason="order")
        except Conflict as refusal:
            if refusal.code != "insufficient_funds":
                raise ServiceUnavailable(f"billing could not charge now: {refusal.message}") from refusal
            self._append(order, order.give_up(refusal.message))  # the balance changed since the order
            return
        self._append(order, order.charged_event())

    def _provision(self, cluster, order):
        started = order.delivery_started()
        if started:  # from here on a cancel is refused (or, had it come first, this conflicts)
            self._append(order, started)
            order = self._load(order.order_id)
        offer = self.offers.get(order.offer_id) or {}
        paid_until = domain.add_month(self.clock.now().date()).isoformat()
        try:
            server = cluster.inventory.provision_server.call(
                order.user_id, order.location, order.name, catalog_rules.hardware_of(offer), order.ips, order.os,
                {"endpoint": self.bmc_endpoint, "system_id": order.system_id}, paid_until, order.price_month,
                order.tag, server_id=server_id_for(order.order_id), power_on=True, timeout=self.provision_timeout)
        except ServiceUnavailable:
            raise
        except PanelError as refusal:  # the machine cannot be delivered (its BMC refuses, …)
            self._append(order, order.give_up(f"The server could not be set up: {refusal.message}"))
            return
        now = self.clock.now()

        def complete(tx, view):
            stock = tx.get(domain.Stock, order.offer_id)
            tx.save(stock, stock.sell(order.order_id))
            tx.save(order, order.completed(server, now))

        try:
            self.operations.succeed(order.operation_id, f"{server.get('number', 'Your server')} is ready; "
                                                        f"its operating system is being installed.",
                                    {"order_id": order.order_id, "server_id": server["id"]}, also=complete)
        except ConcurrencyConflict:
            raise
        except Conflict as finished:  # "operation is succeeded, not running": a redelivery or another
            # replica delivered this order first (the server is the same one: its id comes from the
            # order); nothing is left to do here, so the saga looks again instead of failing the step
            raise ConcurrencyConflict(f"order {order.order_id} was delivered by another worker") from finished

    def _refund(self, cluster, order):
        answer = cluster.billing.refund(order.user_id, order.reference)
        self._append(order, order.refunded_event(answer["refunded"]))

    def _finish_failed(self, order):
        now = self.clock.now()

        def release(tx, view):
            stock = tx.get(domain.Stock, order.offer_id)
            tx.save(stock, stock.release(order.order_id))
            tx.save(order, order.failed(now))

        refunded = (f" {order.refund_amount} {CURRENCY} went back to your balance."
                    if order.refund_amount != "0.00" else "")
        try:
            self.operations.fail(order.operation_id, f"{order.failure}{refunded}", also=release)
        except Conflict:  # the operation already failed (a crash after that): finish the order alone
            with self.store.transaction() as tx:
                release(tx, None)

    def cancel_order(self, cluster, user_id, order_id):
        """The customer withdraws an order whose delivery has not started: it is refunded
        and its unit released (``order_not_cancellable`` otherwise)."""
        self.get_order(user_id, order_id)  # another customer's order: 404

        def attempt():
            order = self._load(order_id)
            self._append(order, order.cancel())

        retrying(attempt)
        try:
            self.advance(cluster, order_id)  # refund and release now; the scheduler would otherwise
        except Exception:
            log.exception("finishing a cancelled order failed; the scheduler retries", extra={"order_id": order_id})
        return self.get_order(user_id, order_id)

    # -- the scheduler -----------------------------------------------------------------------

    def due_orders(self, limit=100):
        """Orders with a step due now: stock deploy dates reached, retries, interrupted sagas."""
        return self.store.read(due_order_ids, self.clock.now().isoformat(), limit)

    def run_scheduler(self, cluster):
        """Advance every order that is due; returns how many were looked at."""
        due = self.due_orders()
        for order_id in due:
            try:
                self.advance(cluster, order_id)
            except Exception:  # one order's trouble must not stop the others
                log.exception("advancing an order failed", extra={"order_id": order_id})
        return len(due)

