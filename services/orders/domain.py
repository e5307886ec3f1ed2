"""The orders domain: stock of each offer, the order saga's state, delivery dates. Pure code.

An order is one operation for the customer; behind it a saga of steps, each recorded in the
order's stream so a crash resumes where it stopped:

    placed (a unit reserved) ──charge──▶ paid ──provision──▶ completed
       │                               │  (stock: waits for its deploy date)
       └──── a step fails for good ────┴──▶ failing ──refund if paid──▶ failed (unit released)

A step that fails for a while (a service unreachable) is retried with growing delays; after
``max_attempts`` it fails for good and the saga compensates.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from common.errors import Conflict, ValidationFailed, error_with_code
from common.eventstore import NewEvent
from common.eventstore.aggregate import Aggregate

PLACED, PAID, FAILING, COMPLETED, FAILED = "placed", "paid", "failing", "completed", "failed"
CANCELLED = "cancelled"  # shown for a failed order the customer cancelled
CANCEL_REASON = "Cancelled at your request."
STEPS = ("charge", "provision", "refund")
MAX_TAG_LENGTH = 64


# -- delivery dates --------------------------------------------------------------------------

def is_business_day(day, holidays):
    return day.weekday() < 5 and day.isoformat() not in holidays


def add_business_days(start, days, holidays=frozenset()):
    """``start`` plus ``days`` × 24 hours counted on business days only (weekends and
    ``holidays`` — ISO dates — skipped): an order on Friday 15:00 with one day is due on
    Monday 15:00; one on Saturday is due on Tuesday 00:00."""
    remaining = timedelta(days=days)
    current = start
    while True:
        day_end = datetime.combine(current.date() + timedelta(days=1), datetime.min.time(), tzinfo=current.tzinfo)
        if is_business_day(current.date(), holidays):
            if current + remaining <= day_end:
                return current + remaining
            remaining -= day_end - current
        current = day_end


def add_month(day):
    """The same day next month (the last day when it has fewer days)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue


# -- stock -------------------------------------------------------------------------------------

@dataclass
class Stock(Aggregate):
    """The claims on one offer's units (stream ``stock-<offer_id>``)."""

    stream_prefix = "stock"

    offer_id: str
    version: int = 0
    claims: dict = field(default_factory=dict)  # unit_id -> (order_id, "reserved" | "sold")

    def _on_unit_reserved(self, data):
        self.claims[data["unit_id"]] = (data["order_id"], "reserved")

    def _on_unit_sold(self, data):
        self.claims[data["unit_id"]] = (data["order_id"], "sold")

    def _on_unit_released(self, data):
        self.claims.pop(data["unit_id"], None)

    def free_units(self, units):
        return [unit for unit in units if unit["unit_id"] not in self.claims]

    def unit_of(self, order_id):
        return next((unit_id for unit_id, (owner, _) in self.claims.items() if owner == order_id), None)

    def reserve(self, order_id, units):
        """Claim the first free unit for ``order_id``; ``out_of_stock`` when none is left."""
        free = self.free_units(units)
        if not free:
            raise error_with_code(Conflict, "out_of_stock", "This offer is sold out.", offer_id=self.offer_id)
        return free[0], [NewEvent("unit_reserved", {"offer_id": self.offer_id, "unit_id": free[0]["unit_id"],
                                                    "order_id": order_id})]

    def sell(self, order_id):
        unit_id = self.unit_of(order_id)
        if unit_id is None or self.claims[unit_id][1] == "sold":
            return []
        return [NewEvent("unit_sold", {"offer_id": self.offer_id, "unit_id": unit_id, "order_id": order_id})]

    def release(self, order_id):
        unit_id = self.unit_of(order_id)
        if unit_id is None or self.claims[unit_id][1] == "sold":
            return []
        return [NewEvent("unit_released", {"offer_id": self.offer_id, "unit_id": unit_id, "order_id": order_id})]


# -- orders ------------------------------------------------------------------------------------

def check_order(offer, location, os, tag, os_names):
    """The customer's choices, checked against the offer; ``ValidationFailed`` names each field."""
    problems = {}
    if offer is None:
        problems["offer_id"] = ["No such offer."]
    elif location != offer["location"]:
        problems["location"] = [f"This offer is in {offer['location']}."]
    if os not in os_names:
        problems["os"] = ["Not in the published OS list."]
    if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG_LENGTH):
        problems["tag"] = [f"At most {MAX_TAG_LENGTH} characters."]
    if problems:
        raise ValidationFailed("The order is invalid.", fields=problems)


@dataclass
class Order(Aggregate):
    stream_prefix = "order"

    order_id: str
    version: int = 0
    status: str = None
    placed: dict = field(default_factory=dict)
    charged: bool = False
    refunded: bool = False
    server_id: str = None
    failure: str = None
    attempts: int = 0
    delivering: bool = False
    cancelled: bool = False
    refund_amount: str = "0.00"

    def _on_order_placed(self, data):
        self.status, self.placed = PLACED, dict(data)

    def _on_order_charged(self, data):
        self.status, self.charged, self.attempts = PAID, True, 0

    def _on_order_step_failed(self, data):
        self.attempts += 1

    def _on_order_delivery_started(self, data):
        self.delivering = True

    def _on_order_failing(self, data):
        self.status, self.failure, self.attempts = FAILING, data["reason"], 0
        self.cancelled = bool(data.get("cancelled"))

    def _on_order_refunded(self, data):
        self.refunded, self.attempts = True, 0
        self.refund_amount = data["amount"]

    def _on_order_completed(self, data):
        self.status, self.server_id = COMPLETED, data["server_id"]

    def _on_order_failed(self, data):
        self.status = FAILED

    def __getattr__(self, name):  # placed fields: user_id, offer_id, kind, price_month …
        placed = self.__dict__.get("placed") or {}
        if name in placed:
            return placed[name]
        raise AttributeError(name)

    @staticmethod
    def place(order_id, *, user_id, offer, unit, location, os, tag, operation_id, idempotency_key, now,
              deploy_eta, deploy_due_at):
        return [NewEvent("order_placed", {
            "order_id": order_id, "user_id": user_id, "offer_id": offer["id"], "kind": offer["kind"],
            "name": offer["name"], "location": location, "os": os, "tag": tag, "price_month": offer["price_month"],
            "unit_id": unit["unit_id"], "system_id": unit["system_id"], "ips": unit["ips"],
            "operation_id": operation_id, "idempotency_key": idempotency_key, "placed_at": now.isoformat(),
            "deploy_eta": deploy_eta.isoformat() if deploy_eta else None,
            "deploy_due_at": deploy_due_at.isoformat() if deploy_due_at else None,
        })]

    @property
    def reference(self):
        """What billing records the charge (and its refund) under: once per order."""
        return f"order-{self.order_id}"

    def next_step(self, now):
        """``charge``, ``provision``, ``refund``, ``fail``, ``wait`` (a stock server before its
        deploy date) or None (finished)."""
        if self.status == PLACED:
            return "charge"
        if self.status == PAID:
            due = self.placed.get("deploy_due_at")
            if due and now < datetime.fromisoformat(due):
                return "wait"
            return "provision"
        if self.status == FAILING:
            # Always ask billing to give back what this order was charged: a charge whose
            # answer was lost (a time-out) is refunded too; nothing charged refunds nothing.
            return "fail" if self.refunded else "refund"
        return None

    def charged_event(self):
        return [NewEvent("order_charged", {"amount": self.price_month, "reference": self.reference,
                                           "due_at": self.placed.get("deploy_due_at")})]

    def step_failed(self, step, reason, max_attempts, now, base_delay_seconds):
        """A step failed for now. Returns the events: a retry record (with when to retry), or
        — the last attempt — the decision to compensate. A refund is retried forever: the
        customer's money goes back."""
        delay = min(base_delay_seconds * 2 ** self.attempts, 300)
        events = [NewEvent("order_step_failed", {"step": step, "reason": reason, "attempt": self.attempts + 1,
                                                 "retry_at": (now + timedelta(seconds=delay)).isoformat()})]
        if self.attempts + 1 >= max_attempts and step != "refund":
            events += self.give_up(f"{reason} (gave up after {max_attempts} attempts)")
        return events

    def delivery_started(self):
        """Recorded before inventory is asked for the server: from then on the order cannot
        be cancelled (a cancel racing with it loses on the order's version, or wins and the
        delivery does not start)."""
        return [] if self.delivering else [NewEvent("order_delivery_started", {})]

    def cancel(self):
        """The customer withdraws the order before its delivery started (a stock server
        waiting for its date, or an instant one not yet charged): refunded, unit released."""
        if self.status in (PLACED, PAID) and not self.delivering:
            return [NewEvent("order_failing", {"reason": CANCEL_REASON, "cancelled": True})]
        why = {COMPLETED: "it was delivered", FAILED: "it has ended", FAILING: "it is being cancelled or failed"}.get(
            self.status, "its server is being delivered")
        raise error_with_code(Conflict, "order_not_cancellable", f"This order cannot be cancelled: {why}.")

    def give_up(self, reason):
        """A step failed for good: compensate what was done, then fail."""
        if self.status not in (PLACED, PAID):
            return []
        return [NewEvent("order_failing", {"reason": reason})]

    def refunded_event(self, amount):
        return [NewEvent("order_refunded", {"amount": amount, "reference": self.reference})]

    def completed(self, server, now):
        return [NewEvent("order_completed", {"server_id": server["id"], "server_number": server.get("number"),
                                             "completed_at": now.isoformat()})]

    def failed(self, now):
        return [NewEvent("order_failed", {"reason": self.failure, "refunded": self.refund_amount,
                                          "cancelled": self.cancelled,
                                          "failed_at": now.isoformat()})]


def order_title(offer, location):
    return f"Order {offer['name']} in {location}"
