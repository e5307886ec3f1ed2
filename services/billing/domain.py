"""The billing domain: each customer's ledger, top-ups and renewal invoices. Pure code.

- ``Account`` (``account-<user id>``): credited and debited amounts; the balance is their
  sum. A charge is idempotent on its reference and never takes the balance below zero.
- ``TopUp`` (``topup-<id>``): requested with a payment method, then succeeded (credited
  once) or failed, as the provider's signed notification says. A notice from another
  provider, in another currency or naming another top-up settles nothing: it is recorded
  (``payment_mismatch``) for support.
- ``Invoice`` (``invoice-<id>``): a month of a server, issued when its paid period ends;
  paid from the balance when it suffices, otherwise overdue until a top-up covers it.
- ``Subscription`` (``subscription-<server id>``): what billing knows of a server (owner,
  monthly price, paid until), from inventory's ``server_provisioned``.

Money is ``Decimal`` with two places, carried as strings in events ("25.00"); one currency.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from common.errors import Conflict, ValidationFailed, error_with_code
from common.eventstore import Aggregate, NewEvent

CURRENCY = "EUR"
MIN_TOPUP = Decimal("20.00")
CENT = Decimal("0.01")


def money(value):
    """``value`` as a two-place Decimal; ValueError when it is not an amount."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount: {value!r}")
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def reconciliation_due(age, first_after, run_every):
    """Whether a pending top-up of ``age`` is to be looked up at its provider by the timer
    run now (runs come every ``run_every``): when its age passed ``first_after``, twice,
    four times … ``first_after`` since the previous run — a handful of calls over a day,
    not one a minute, for a checkout nobody will pay."""
    checkpoint = first_after
    while checkpoint <= age:
        if age - run_every < checkpoint:
            return True
        checkpoint *= 2
    return False


def check_topup(amount, method, methods, maximum):
    problems = {}
    try:
        value = money(amount)
        if value < MIN_TOPUP:
            problems["amount"] = [f"At least {MIN_TOPUP} {CURRENCY}."]
        elif value > maximum:
            problems["amount"] = [f"At most {maximum} {CURRENCY}."]
    except ValueError:
        problems["amount"] = ["A number such as 25.00."]
    if method not in methods:
        problems["method"] = [f"One of {', '.join(methods)}."]
    if problems:
        raise ValidationFailed("The top-up is invalid.", fields=problems)
    return money(amount)


def add_month(day):
    """The same day next month (the last day when that month is shorter)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass
class Account(Aggregate):
    stream_prefix = "account"

    user_id: str
    version: int = 0
    balance: Decimal = Decimal("0.00")
    charged: dict = field(default_factory=dict)  # reference -> amount taken
    refunded: set = field(default_factory=set)

    def _on_account_credited(self, data):
        self.balance += money(data["amount"])
        if data.get("reason") == "refund":
            self.refunded.add(data["reference"])

    def _on_account_debited(self, data):
        self.balance -= money(data["amount"])
        self.charged[data["reference"]] = money(data["amount"])

    def refund(self, reference):
        """Give back what was taken for ``reference``, once; [] when nothing was taken under
        it (a charge that never happened) or it was already given back."""
        if reference not in self.charged or reference in self.refunded:
            return []
        return [NewEvent("account_credited", {"amount": str(self.charged[reference]), "reason": "refund",
                                              "reference": reference})]

    def credit(self, amount, reason, reference):
        return [NewEvent("account_credited", {"amount": str(money(amount)), "reason": reason, "reference": reference})]

    def charge(self, amount, reason, reference):
        """Take ``amount`` for ``reference`` once; [] if it was already taken."""
        if reference in self.charged:
            return []
        amount = money(amount)
        if amount > self.balance:
            raise error_with_code(Conflict, "insufficient_funds",
                                  f"The balance ({self.balance} {CURRENCY}) does not cover {amount} {CURRENCY}.",
                                  balance=str(self.balance), amount=str(amount))
        return [NewEvent("account_debited", {"amount": str(amount), "reason": reason, "reference": reference})]


@dataclass
class TopUp(Aggregate):
    stream_prefix = "topup"

    topup_id: str
    version: int = 0
    user_id: str = None
    amount: str = None
    method: str = None
    provider_payment_id: str = None
    operation_id: str = None
    status: str = "pending"
    currency: str = CURRENCY
    refused_notices: set = field(default_factory=set)

    def _on_topup_requested(self, data):
        self.user_id, self.amount, self.method = data["user_id"], data["amount"], data["method"]
        self.provider_payment_id, self.operation_id = data["provider_payment_id"], data["operation_id"]
        self.currency = data.get("currency", CURRENCY)  # older top-ups were all asked in CURRENCY

    def _on_topup_succeeded(self, data):
        self.status = "succeeded"

    def _on_topup_failed(self, data):
        self.status = "failed"

    def _on_late_payment_credited(self, data):
        self.status = "succeeded"  # (topup_succeeded, in the same transaction, said so already)

    def _on_payment_mismatch(self, data):
        self.refused_notices.add(_notice_key(data["notice"]))

    @staticmethod
    def request(topup_id, user_id, amount, method, payment, operation_id, idempotency_key):
        return [NewEvent("topup_requested", {
            "topup_id": topup_id, "user_id": user_id, "amount": str(money(amount)), "currency": CURRENCY,
            "method": method, "provider_payment_id": payment["provider_payment_id"],
            "redirect_url": payment.get("redirect_url"),
            "instructions": payment.get("instructions"), "operation_id": operation_id,
            "idempotency_key": idempotency_key,
        })]

    def expire(self):
        """No verdict arrived in time: the top-up fails (``reason`` expired). A payment
        that still arrives later is credited all the same (``settle``)."""
        return [NewEvent("topup_failed", {"reason": "expired"})] if self.status == "pending" else []

    def mismatches(self, provider, currency, reference):
        """Why a verified notice may not settle this top-up; [] when it may. ``provider``:
        it comes from another provider than the top-up's method (its payment id only
        happens to be ours); ``currency``: its amount is in another currency than the
        top-up's, so crediting that number would credit the wrong sum; ``reference``: it
        names another top-up (a notice without a reference is matched by its payment id)."""
        reasons = []
        if provider != self.method:
            reasons.append("provider")
        if (currency or "").upper() != self.currency:
            reasons.append("currency")
        if reference is not None and reference != self.topup_id:
            reasons.append("reference")
        return reasons

    def refuse(self, reasons, notice):
        """Record a notice that may not settle this top-up (``payment_mismatch``: what it
        said, what was expected, why): once per distinct notice, whatever the top-up's
        status, which it leaves as it is. ``notice``: provider, provider_payment_id,
        status, amount, currency and reference, as the provider reported them."""
        if _notice_key(notice) in self.refused_notices:
            return []
        return [NewEvent("payment_mismatch", {
            "topup_id": self.topup_id, "user_id": self.user_id, "reasons": list(reasons), "notice": dict(notice),
            "expected": {"method": self.method, "currency": self.currency, "reference": self.topup_id}})]

    def settle(self, succeeded, paid_amount):
        """The provider's verdict. Success credits once, whenever and however often it
        arrives (even after a failure notice); a failure after success changes nothing."""
        if self.status == "succeeded":
            return []
        if succeeded:
            return [NewEvent("topup_succeeded", {"paid_amount": str(money(paid_amount))})]
        if self.status == "failed":
            return []
        return [NewEvent("topup_failed", {})]


def _notice_key(notice):
    """What tells one provider notice from another (a redelivery has the same key)."""
    return tuple(sorted((key, str(value)) for key, value in notice.items()))


def late_payment_credited(topup, paid_amount, now):
    """The event that tells the customer a payment for a top-up that had already failed
    (expired, or a failure notice came first) was credited after all."""
    return NewEvent("late_payment_credited", {
        "topup_id": topup.topup_id, "user_id": topup.user_id, "amount": str(money(paid_amount)),
        "currency": CURRENCY, "method": topup.method, "operation_id": topup.operation_id, "at": now.isoformat()})


@dataclass
class Subscription(Aggregate):
    stream_prefix = "subscription"

    server_id: str
    version: int = 0
    user_id: str = None
    number: str = None
    price_month: str = None
    paid_until: str = None
    open_invoice: str = None

    def _on_server_subscribed(self, data):
        self.user_id, self.number = data["user_id"], data["number"]
        self.price_month, self.paid_until = data["price_month"], data["paid_until"]

    def _on_renewal_invoiced(self, data):
        self.open_invoice = data["invoice_id"]

    def _on_renewal_paid(self, data):
        self.paid_until, self.open_invoice = data["paid_until"], None

    @staticmethod
    def subscribe(server):
        return [NewEvent("server_subscribed", {
            "server_id": server["server_id"], "user_id": server["user_id"], "number": server["number"],
            "price_month": str(money(server["price_month"])), "paid_until": server["paid_until"]})]

    def due(self, today):
        """A renewal is due when the paid period has ended and none is open."""
        return self.open_invoice is None and date.fromisoformat(self.paid_until) <= today

    def invoice(self, invoice_id):
        start = date.fromisoformat(self.paid_until)
        return [NewEvent("renewal_invoiced", {"invoice_id": invoice_id, "period_start": start.isoformat(),
                                              "period_end": add_month(start).isoformat()})]

    def renewed(self, invoice):
        return [NewEvent("renewal_paid", {"invoice_id": invoice.invoice_id, "paid_until": invoice.period_end})]


@dataclass
class Invoice(Aggregate):
    stream_prefix = "invoice"

    invoice_id: str
    version: int = 0
    user_id: str = None
    server_id: str = None
    amount: str = None
    period_start: str = None
    period_end: str = None
    status: str = "open"

    def _on_invoice_issued(self, data):
        self.user_id, self.server_id, self.amount = data["user_id"], data["server_id"], data["amount"]
        self.period_start, self.period_end = data["period_start"], data["period_end"]

    def _on_invoice_paid(self, data):
        self.status = "paid"

    def _on_invoice_overdue(self, data):
        self.status = "overdue"

    @staticmethod
    def issue(invoice_id, number, subscription, period, issued_on):
        return [NewEvent("invoice_issued", {
            "invoice_id": invoice_id, "number": number, "user_id": subscription.user_id,
            "server_id": subscription.server_id, "server_number": subscription.number,
            "amount": subscription.price_month, "currency": CURRENCY, "period_start": period["period_start"],
            "period_end": period["period_end"], "issued_on": issued_on.isoformat(), "due_on": issued_on.isoformat(),
        })]

    def pay(self, paid_on):
        if self.status == "paid":
            return []
        return [NewEvent("invoice_paid", {"invoice_id": self.invoice_id, "user_id": self.user_id,
                                          "server_id": self.server_id, "paid_on": paid_on.isoformat(),
                                          "paid_until": self.period_end})]

    def mark_overdue(self):
        if self.status != "open":
            return []
        return [NewEvent("invoice_overdue", {"invoice_id": self.invoice_id, "user_id": self.user_id,
                                             "server_id": self.server_id, "amount": self.amount})]
