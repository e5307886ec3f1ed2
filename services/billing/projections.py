"""Schema, read models and queries of the billing service: balances, top-ups, invoices and
the servers billing renews (subscriptions). Amounts are stored as strings ("25.00")."""

from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.schema import JSON
from common.paging import newest_first_page
from common.service_schema import ServiceSchema
from services.billing.domain import money

schema = ServiceSchema("billing", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("balance", sa.String(20), nullable=False),
)
topups = sa.Table(
    "topups", metadata,
    sa.Column("topup_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", sa.String(20), nullable=False),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("provider_payment_id", sa.String(200), nullable=False, unique=True),
    sa.Column("redirect_url", sa.String(1000), nullable=True),
    sa.Column("instructions", JSON, nullable=True),
    sa.Column("operation_id", sa.String(100), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_topups_user_idempotency_key"),
)
invoices = sa.Table(
    "invoices", metadata,
    sa.Column("invoice_id", sa.String(64), primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("server_id", sa.String(64), nullable=False),
    sa.Column("server_number", sa.String(32), nullable=False),
    sa.Column("amount", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("period_start", sa.String(10), nullable=False),
    sa.Column("period_end", sa.String(10), nullable=False),
    sa.Column("issued_on", sa.String(10), nullable=False),
    sa.Column("paid_on", sa.String(10), nullable=True),
)
subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("server_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("price_month", sa.String(20), nullable=False),
    sa.Column("paid_until", sa.String(10), nullable=False, index=True),
    sa.Column("open_invoice", sa.String(64), nullable=True),
)

# Every movement of a balance, for the customer's statement (credits and debits).
ledger = sa.Table(
    "ledger", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(6), nullable=False),
    sa.Column("amount", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("balance_after", sa.String(20), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Index("ix_ledger_user_position", "user_id", "position"),
)


UNPAID = ("open", "overdue")


def balance_of(conn, user_id):
    """The customer's balance ("25.00"), None before their first movement."""
    return conn.execute(sa.select(accounts.c.balance).where(accounts.c.user_id == user_id)).scalar()


def unpaid_invoices(conn, user_id):
    """The customer's open and overdue invoices (id, status, amount), oldest first."""
    return conn.execute(sa.select(invoices.c.invoice_id, invoices.c.status, invoices.c.amount).where(
        invoices.c.user_id == user_id, invoices.c.status.in_(UNPAID)).order_by(invoices.c.number)).mappings().all()


def invoice_page(conn, user_id, status, page, per_page):
    """``(rows, total)``: a page of the customer's invoices (of ``status``, if any), newest first."""
    where = [invoices.c.user_id == user_id]
    if status:
        where.append(invoices.c.status == status)
    total = conn.execute(sa.select(sa.func.count()).select_from(invoices).where(*where)).scalar_one()
    rows = conn.execute(sa.select(invoices).where(*where).order_by(invoices.c.number.desc())
                        .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    return rows, total


def statement_page(conn, user_id, page, per_page, before=None):
    """``(rows, total, next_cursor)``: the customer's ledger newest first, after ``before`` or at ``page``."""
    where = [ledger.c.user_id == user_id]
    query = sa.select(ledger).where(*where).order_by(ledger.c.position.desc()).limit(per_page + 1)
    query = query.where(ledger.c.position < before) if before is not None else query.offset((page - 1) * per_page)
    total = conn.execute(sa.select(sa.func.count()).select_from(ledger).where(*where)).scalar_one()
    rows, next_cursor = newest_first_page(conn.execute(query).mappings().all(), per_page, lambda row: row["position"])
    return rows, total, next_cursor


def topup_of(conn, user_id, topup_id):
    """The customer's top-up, None when there is no such top-up of theirs."""
    return conn.execute(sa.select(topups).where(
        topups.c.topup_id == topup_id, topups.c.user_id == user_id)).mappings().first()


def topup_by_key(conn, user_id, idempotency_key):
    """The customer's top-up asked for with ``idempotency_key``, None when there is none."""
    return conn.execute(sa.select(topups).where(
        topups.c.user_id == user_id, topups.c.idempotency_key == idempotency_key)).mappings().first()


def topup_id_of_payment(conn, provider_payment_id):
    """The id of the top-up a provider's payment belongs to, None for an unknown payment."""
    return conn.execute(sa.select(topups.c.topup_id).where(
        topups.c.provider_payment_id == provider_payment_id)).scalar()


def pending_topups(conn, requested_before):
    """The top-ups still pending that were asked for before ``requested_before`` (ISO)."""
    return conn.execute(sa.select(topups.c.topup_id, topups.c.method, topups.c.provider_payment_id,
                                  topups.c.created_at).where(topups.c.status == "pending",
                                                             topups.c.created_at < requested_before)).mappings().all()


def due_renewals(conn, today):
    """The servers paid until ``today`` or earlier that have no open renewal invoice."""
    return conn.execute(sa.select(subscriptions.c.server_id).where(
        subscriptions.c.paid_until <= today.isoformat(), subscriptions.c.open_invoice.is_(None))).scalars().all()


def owners_of_unsettled_invoices(conn):
    """The customers with an invoice still open, or overdue and covered by their balance now."""
    def amount(column):
        return sa.cast(column, sa.Numeric(14, 2))

    unsettled = sa.or_(invoices.c.status == "open", sa.and_(
        invoices.c.status == "overdue", amount(accounts.c.balance) >= amount(invoices.c.amount)))
    return conn.execute(sa.select(invoices.c.user_id).distinct()
                        .select_from(invoices.outerjoin(accounts, accounts.c.user_id == invoices.c.user_id))
                        .where(unsettled).order_by(invoices.c.user_id)).scalars().all()


def next_invoice_number(conn):
    """The next invoice number (INV-100001 first); the caller holds the log's lock."""
    last = conn.execute(sa.select(sa.func.max(invoices.c.number))).scalar()
    return f"INV-{int(last.split('-')[1]) + 1 if last else 100001}"


def _key(event, prefix):
    return event.stream_id.removeprefix(prefix)


class BillingProjection(Projection):
    tables = (accounts, topups, invoices, subscriptions, ledger)

    def _move(self, conn, user_id, delta):
        row = balance_of(conn, user_id)
        balance = money(delta) if row is None else money(row) + money(delta)
        if row is None:
            conn.execute(accounts.insert().values(user_id=user_id, balance=str(balance)))
        else:
            conn.execute(accounts.update().where(accounts.c.user_id == user_id).values(balance=str(balance)))
        return balance

    def _record(self, conn, event, direction, delta):
        user_id = _key(event, "account-")
        balance = self._move(conn, user_id, delta)
        conn.execute(ledger.insert().values(
            position=event.position, user_id=user_id, direction=direction, amount=event.data["amount"],
            reason=event.data.get("reason") or "", reference=event.data.get("reference"), balance_after=str(balance),
            at=event.recorded_at.isoformat()))

    def when_account_credited(self, conn, event):
        self._record(conn, event, "credit", money(event.data["amount"]))

    def when_account_debited(self, conn, event):
        self._record(conn, event, "debit", -money(event.data["amount"]))

    def when_topup_requested(self, conn, event):
        data = event.data
        conn.execute(topups.insert().values(
            topup_id=data["topup_id"], user_id=data["user_id"], amount=data["amount"], method=data["method"],
            status="pending", provider_payment_id=data["provider_payment_id"], redirect_url=data.get("redirect_url"),
            instructions=data.get("instructions"), operation_id=data["operation_id"],
            idempotency_key=data.get("idempotency_key"), created_at=event.recorded_at.isoformat()))

    def when_topup_succeeded(self, conn, event):
        conn.execute(topups.update().where(topups.c.topup_id == _key(event, "topup-")).values(status="succeeded"))

    def when_topup_failed(self, conn, event):
        conn.execute(topups.update().where(topups.c.topup_id == _key(event, "topup-")).values(status="failed"))

    def when_invoice_issued(self, conn, event):
        data = event.data
        conn.execute(invoices.insert().values(
            invoice_id=data["invoice_id"], number=data["number"], user_id=data["user_id"], server_id=data["server_id"],
            server_number=data["server_number"], amount=data["amount"], status="open",
            period_start=data["period_start"], period_end=data["period_end"], issued_on=data["issued_on"]))

    def when_invoice_paid(self, conn, event):
        conn.execute(invoices.update().where(invoices.c.invoice_id == event.data["invoice_id"]).values(
            status="paid", paid_on=event.data["paid_on"]))

    def when_invoice_overdue(self, conn, event):
        conn.execute(invoices.update().where(invoices.c.invoice_id == event.data["invoice_id"]).values(status="overdue"))

    def when_server_subscribed(self, conn, event):
        data = event.data
        conn.execute(subscriptions.insert().values(
            server_id=data["server_id"], user_id=data["user_id"], number=data["number"],
            price_month=data["price_month"], paid_until=data["paid_until"]))

    def when_renewal_invoiced(self, conn, event):
        conn.execute(subscriptions.update().where(subscriptions.c.server_id == _key(event, "subscription-")).values(
            open_invoice=event.data["invoice_id"]))

    def when_renewal_paid(self, conn, event):
        conn.execute(subscriptions.update().where(subscriptions.c.server_id == _key(event, "subscription-")).values(
            open_invoice=None, paid_until=event.data["paid_until"]))


schema.add_projection(BillingProjection())
