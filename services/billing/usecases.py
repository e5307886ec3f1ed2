"""The billing service's use cases: balances, top-ups through the payment providers,
signed payment notifications credited exactly once, renewal invoices and overdue servers.

A top-up is an operation (``billing.topup``): requested when the customer is sent to the
provider, finished when the provider's signed notification arrives — so the action log
shows it running and then its result. Provider calls never happen inside a transaction.
"""

import base64
import dataclasses
import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common import context
from common.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import retrying, utcnow
from common.paging import position_cursor
from services.billing import domain
from services.billing.adapters import PaymentProviderError, WebhookRejected
from services.billing.adapters.methods import METHODS
from services.billing.projections import (
    balance_of,
    due_renewals,
    invoice_page,
    next_invoice_number,
    owners_of_unsettled_invoices,
    pending_topups,
    statement_page,
    topup_by_key,
    topup_id_of_payment,
    topup_of,
    unpaid_invoices,
)

log = logging.getLogger(__name__)


def topup_view(row):
    view = {"id": row["topup_id"], "status": row["status"], "amount": row["amount"], "currency": domain.CURRENCY,
            "method": row["method"], "provider_payment_id": row["provider_payment_id"],
            "operation_id": row["operation_id"], "created_at": row["created_at"]}
    if row["redirect_url"]:
        view["redirect_url"] = row["redirect_url"]
    if row["instructions"]:
        view["instructions"] = row["instructions"]
    return view


def invoice_view(row):
    return {key: row[key] for key in ("number", "server_id", "server_number", "amount", "status", "period_start",
                                      "period_end", "issued_on", "paid_on")} | {"id": row["invoice_id"],
                                                                                 "currency": domain.CURRENCY}


def logged_attempt(work, what, fallback=None, **ids):
    """``work()``, or ``fallback`` when it raised: the failure is logged with ``ids`` (no
    secrets) and left for the next billing run, so one item never stops the others."""
    try:
        return work()
    except Exception:
        log.exception("%s failed; the next billing run tries again", what, extra=ids)
        return fallback


TIMER_INTERVAL = timedelta(seconds=60)  # how often the service's timer runs run_timer_jobs


class BillingUseCases:
    def __init__(self, store, operations, providers, clock, config):
        self.store = store
        self.operations = operations
        self.providers = providers
        self.clock = clock
        self.max_topup = domain.money(config.get("TOPUP_MAX", "10000"))
        self.topup_expiry = timedelta(hours=float(config.get("TOPUP_EXPIRY_HOURS", 24)))
        self.reconcile_after = timedelta(seconds=float(config.get("TOPUP_RECONCILE_AFTER_SECONDS", 300)))
        self.return_url = config.get("PANEL_URL", "http://127.0.0.1:8000") + "/billing"

    # -- reading ---------------------------------------------------------------------------

    def account(self, user_id):
        balance = self.store.read(balance_of, user_id)
        unpaid = self.store.read(unpaid_invoices, user_id)
        return {"balance": balance if balance is not None else "0.00", "currency": domain.CURRENCY,
                "overdue": any(r["status"] == "overdue" for r in unpaid),
                "unpaid_invoices": len(unpaid),
                "amount_due": str(sum((domain.money(r["amount"]) for r in unpaid), domain.money(0)))}

    def list_invoices(self, user_id, status=None, page=1, per_page=50):
        rows, total = self.store.read(invoice_page, user_id, status, page, per_page)
        return {"items": [invoice_view(r) for r in rows], "total": total, "page": page, "per_page": per_page}

    def list_transactions(self, user_id, page=1, per_page=50, cursor=None):
        """The statement: every credit and debit of the balance, newest first — by ``page``
        or by ``cursor`` (the previous answer's ``next_cursor``)."""
        before = position_cursor(cursor)
        rows, total, next_cursor = self.store.read(statement_page, user_id, page, per_page, before)
        items = [{"id": str(r["position"]), "direction": r["direction"], "amount": r["amount"],
                  "currency": domain.CURRENCY, "reason": r["reason"], "reference": r["reference"],
                  "balance_after": r["balance_after"], "at": r["at"]} for r in rows]
        return {"items": items, "total": total, "page": page, "per_page": per_page, "next_cursor": next_cursor}

    def get_topup(self, user_id, topup_id):
        row = self.store.read(topup_of, user_id, topup_id)
        if row is None:
            raise NotFound("No such top-up.")
        return topup_view(row)

    # -- top-ups ---------------------------------------------------------------------------

    def create_topup(self, user_id, amount, method, idempotency_key=None):
        amount = domain.check_topup(amount, method, METHODS, self.max_topup)
        if idempotency_key:
            earlier = self.store.read(topup_by_key, user_id, idempotency_key)
            if earlier is not None:
                if (domain.money(earlier["amount"]), earlier["method"]) != (amount, method):
                    raise error_with_code(Conflict, "idempotency_key_reused",
                                          "This Idempotency-Key was used for a different top-up.")
                return topup_view(earlier)
        topup_id = context.new_id()
        try:
            payment = self.providers[method].create_payment(topup_id, amount, domain.CURRENCY, self.return_url)
        except PaymentProviderError as error:
            raise ServiceUnavailable(f"{METHODS[method]['name']} is not available right now: {error}")
        try:
            with self.store.transaction() as tx:
                operation = self.operations.request(
                    tx, kind="billing.topup", target=topup_id, user_id=user_id,
                    title=f"Top-up of {amount} {domain.CURRENCY} via {METHODS[method]['name']}")
                tx.create(domain.TopUp, topup_id, domain.TopUp.request(
                    topup_id, user_id, amount, method, payment, operation["id"], idempotency_key))
        except IntegrityError:
            # The same Idempotency-Key raced us: the first one's answer stands.
            return self.create_topup(user_id, amount, method, idempotency_key)
        return self.get_topup(user_id, topup_id)

    def receive_webhook(self, provider, headers, body_base64):
        """A provider's notification: verify it, then settle its top-up exactly once."""
        if provider not in self.providers:
            raise NotFound("No such payment provider.")
        try:
            # Signature freshness is checked against real time, never the business clock
            # (which tests and the demo move forward).
            notice = self.providers[provider].parse_webhook(
                {k.lower(): v for k, v in headers.items()}, base64.b64decode(body_base64), utcnow())
        except WebhookRejected as rejected:
            raise error_with_code(ValidationFailed, "invalid_signature",
                                  f"The notification was rejected ({rejected.reason}).")
        except PaymentProviderError:
            # The provider could not be asked to confirm: answer 503 so that it retries.
            raise ServiceUnavailable("The payment could not be confirmed with the provider; retry later.")
        if notice is None:
            return {"result": "ignored"}  # authentic, but nothing to settle (another event type)
        topup_id = self.store.read(topup_id_of_payment, notice.provider_payment_id)
        if topup_id is None:
            log.warning("payment notification for an unknown payment", extra={"provider": provider})
            return {"result": "unknown_payment"}
        return retrying(lambda: self._settle(topup_id, notice))

    def _settle(self, topup_id, notice):
        """Record the provider's verdict: the top-up's events, the credit and the operation's
        outcome commit together, or not at all (a concurrent delivery: look again). Paying
        invoices from the credit follows; should it fail, the notice is still answered as
        credited (it was) and the next billing run pays them (``resume_unsettled_invoices``)."""
        topup = self.store.get(domain.TopUp, topup_id)
        reasons = topup.mismatches(notice.provider, notice.currency, notice.reference)
        if reasons:
            return self._refuse(topup, notice, reasons)
        succeeded = notice.status == "succeeded"
        events = topup.settle(succeeded, notice.amount)
        if not events:
            return {"result": "duplicate"}
        if succeeded and topup.status == "failed":
            # Its operation already ended (expired, or a failure notice came first): the
            # action log still hears of the money.
            events = events + [domain.late_payment_credited(topup, notice.amount, self.clock.now())]
        with self.store.transaction() as tx:
            tx.save(topup, events)
            if succeeded:
                account = tx.get(domain.Account, topup.user_id)
                tx.save(account, account.credit(notice.amount, "topup", topup_id))
                detail = f"{notice.amount} {domain.CURRENCY} added to your balance."
            else:
                detail = "The payment did not go through."
            self.operations.conclude(tx, topup.operation_id, succeeded, detail, {"amount": notice.amount})
        if succeeded:
            logged_attempt(lambda: self.pay_open_invoices(topup.user_id), "paying invoices after a credit",
                           topup_id=topup_id)
        return {"result": "credited" if succeeded else "failed"}

    def _refuse(self, topup, notice, reasons):
        """A verified notice that does not match its top-up (``TopUp.mismatches``) credits
        nothing and is recorded once (``payment_mismatch`` on the top-up's stream: what
        support reconciles from — a refund, or a credit after conversion). It is answered
        ``refused`` with 2xx, not an error: it is authentic and the same every time it is
        sent, so a provider's retries could never succeed — they would only go on for days
        and end with the provider disabling the endpoint for every payment. The top-up stays
        as it was, so the matching payment still settles it."""
        events = topup.refuse(reasons, dataclasses.asdict(notice))
        if events:
            self.store.save(topup, events)
        log.warning("payment notification refused: it does not match its top-up",
                    extra={"provider": notice.provider, "topup_id": topup.topup_id, "reasons": reasons})
        return {"result": "refused", "reasons": reasons}

    # -- reconciliation --------------------------------------------------------------------

    def reconcile_topups(self, scheduled=False):
        """Ask each provider about the top-ups still pending ``TOPUP_RECONCILE_AFTER_SECONDS``
        after they were asked for — their webhook may never come (the provider gave up its
        retries while billing or the gateway was down) — and settle those it says are final:
        exactly once, whichever of this and the webhook comes first (both go through
        ``_settle``). ``scheduled`` (the timer, every minute): each top-up is asked when its
        age passes that delay, then twice, four times … that delay, so an abandoned checkout
        costs a handful of calls, not one a minute; unscheduled (an operator, a test): all
        of them now. Returns how many were settled."""
        now = self.clock.now()
        cutoff = (now - self.reconcile_after).isoformat()
        rows = self.store.read(pending_topups, cutoff)
        settled = 0
        for row in rows:
            age = now - datetime.fromisoformat(row["created_at"])
            if scheduled and not domain.reconciliation_due(age, self.reconcile_after, TIMER_INTERVAL):
                continue
            settled += logged_attempt(lambda: self._reconcile(row), "reconciling a top-up", fallback=0,
                                      topup_id=row["topup_id"])
        return settled

    def _reconcile(self, row):
        """Settle one pending top-up from what its provider says now (1 when it did)."""
        provider = self.providers.get(row["method"])
        if provider is None:
            return 0
        try:
            notice = provider.retrieve_payment(row["provider_payment_id"])
        except PaymentProviderError as error:
            log.warning("could not ask the provider about a pending top-up; asking again later",
                        extra={"topup_id": row["topup_id"], "provider": row["method"], "reason": error.reason})
            return 0
        if notice is None:
            return 0  # not paid yet (the customer may still pay)
        outcome = retrying(lambda: self._settle(row["topup_id"], notice))
        if outcome["result"] in ("credited", "failed"):
            log.info("a pending top-up was settled by asking its provider",
                     extra={"topup_id": row["topup_id"], "provider": row["method"], "result": outcome["result"]})
            return 1
        return 0

    def expire_topups(self):
        """Fail the top-ups still waiting for their payment ``TOPUP_EXPIRY_HOURS`` after
        they were asked for, so that no operation stays pending for ever — each one's
        provider asked a last time first (a payment it confirms is credited instead).
        Returns how many expired."""
        cutoff = (self.clock.now() - self.topup_expiry).isoformat()
        stale = self.store.read(pending_topups, cutoff)
        expired = 0
        for row in stale:
            if logged_attempt(lambda: self._reconcile(row), "reconciling a top-up before it expires", fallback=0,
                              topup_id=row["topup_id"]):
                continue
            expired += logged_attempt(lambda: retrying(lambda: self._expire(row["topup_id"])), "expiring a top-up",
                                      fallback=0, topup_id=row["topup_id"])
        return expired

    def _expire(self, topup_id):
        topup = self.store.get(domain.TopUp, topup_id)
        events = topup.expire()
        if not events:
            return False  # settled meanwhile
        hours = f"{self.topup_expiry.total_seconds() / 3600:g}"
        with self.store.transaction() as tx:
            tx.save(topup, events)
            self.operations.conclude(tx, topup.operation_id, False,
                                     f"No payment arrived within {hours} hours; nothing was charged.")
        return True

    # -- charges (orders) ------------------------------------------------------------------

    def charge(self, user_id, amount, reference, reason="order"):
        """Take ``amount`` once for ``reference``; ``insufficient_funds`` leaves the balance as it is."""
        def attempt():
            account = self.store.get(domain.Account, user_id)
            events = account.charge(amount, reason, reference)
            if events:
                self.store.save(account, events)
            return {"charged": bool(events), "reference": reference}

        return retrying(attempt)

    def refund(self, user_id, reference):
        """Give back what ``reference`` was charged, once: ``{"refunded": amount}`` ("0.00"
        when nothing was charged under it, or it was refunded before)."""
        def attempt():
            account = self.store.get(domain.Account, user_id)
            events = account.refund(reference)
            if events:
                self.store.save(account, events)
            return {"refunded": events[0].data["amount"] if events else "0.00", "reference": reference}

        return retrying(attempt)

    # -- subscriptions and invoices --------------------------------------------------------

    def subscribe(self, consumer, envelope):
        """From inventory's ``server_provisioned``: start renewing that server."""
        with self.store.transaction() as tx:
            if not tx.record_inbox(consumer, envelope["event_id"]):
                return
            server = envelope["data"]
            tx.create(domain.Subscription, server['server_id'], domain.Subscription.subscribe(server))

    def run_timer_jobs(self):
        """What the billing timer does every minute: renewals, then pending top-ups (their
        providers asked, then the unpaid ones expired). A job that fails is logged and does
        not keep the others from running."""
        jobs = (self.run_billing, lambda: self.reconcile_topups(scheduled=True), self.expire_topups)
        for name, job in zip(("run_billing", "reconcile_topups", "expire_topups"), jobs):
            logged_attempt(job, "a billing timer job", job=name)

    def run_billing(self):
        """Resume the invoices earlier runs left unsettled, then issue the renewal invoices
        that are due and pay each from the balance when it suffices; the others become
        overdue. A renewal that fails is logged and skipped (the next run resumes it).
        Returns how many were issued."""
        self.resume_unsettled_invoices()
        today = self.clock.now().date()
        issued = 0
        for server_id in self.store.read(due_renewals, today):
            invoice_id = logged_attempt(lambda: retrying(lambda: self._issue(server_id, today)),
                                        "issuing a renewal invoice", server_id=server_id)
            if invoice_id:
                issued += 1
                self._settle_invoice(invoice_id)
        return issued

    def resume_unsettled_invoices(self):
        """Finish what a failure after a commit left undone: invoices still ``open`` (issued,
        but their payment step never ran) and overdue invoices the owner's balance now
        covers (a credit whose payment of them failed). Each owner's invoices go through
        ``pay_open_invoices``. Safe on N replicas at once, and with the replica that issued
        an invoice paying it right now: every step appends at the version it read, so a
        second attempt fails, reads again and finds the invoice settled."""
        for user_id in self.store.read(owners_of_unsettled_invoices):
            logged_attempt(lambda: self.pay_open_invoices(user_id), "resuming a customer's invoices",
                           user_id=user_id)

    def _issue(self, server_id, today):
        subscription = self.store.get(domain.Subscription, server_id)
        if not subscription.due(today):
            return None
        invoice_id = context.new_id()
        with self.store.transaction() as tx:
            tx.lock_log()
            number = next_invoice_number(tx.conn)
            period = subscription.invoice(invoice_id)
            tx.save(subscription, period)
            tx.create(domain.Invoice, invoice_id, domain.Invoice.issue(invoice_id, number, subscription, period[0].data,
                                                                       today))
        return invoice_id

    def _pay_or_overdue(self, invoice_id, may_pay=True):
        """Pay the invoice from its owner's balance when ``may_pay`` and the balance covers
        it; otherwise an open one becomes overdue (``invoice_overdue``, once). True when paid."""
        def attempt():
            invoice = self.store.get(domain.Invoice, invoice_id)
            if invoice.status == "paid":
                return True
            account = self.store.get(domain.Account, invoice.user_id)
            try:
                debit = account.charge(invoice.amount, "invoice", invoice_id) if may_pay else None
            except Conflict:
                debit = None
            if debit is None:
                events = invoice.mark_overdue()
                if events:
                    self.store.save(invoice, events)
                return False
            subscription = self.store.get(domain.Subscription, invoice.server_id)
            with self.store.transaction() as tx:
                tx.save(account, debit)
                tx.save(invoice, invoice.pay(self.clock.now().date()))
                tx.save(subscription, subscription.renewed(invoice))
            return True

        return retrying(attempt)

    def _settle_invoice(self, invoice_id, may_pay=True):
        """``_pay_or_overdue``, but a failure is logged and counts as not paid: the next
        billing run resumes the invoice (``resume_unsettled_invoices``)."""
        return logged_attempt(lambda: self._pay_or_overdue(invoice_id, may_pay), "settling an invoice",
                              fallback=False, invoice_id=invoice_id)

    def pay_open_invoices(self, user_id):
        """After a credit, and when resuming: pay the customer's unpaid invoices, oldest
        first, while the balance covers them; from the first it does not cover (or that
        fails), the open ones only become overdue."""
        rows = self.store.read(unpaid_invoices, user_id)
        may_pay = True
        for row in rows:
            may_pay = self._settle_invoice(row["invoice_id"], may_pay) and may_pay
