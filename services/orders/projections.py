"""Schema, read models and queries of the orders service: the customer's orders (with what
the scheduler needs to find the ones to move on) and the claimed units of each offer."""

from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.lists import NewestFirst
from common.service_schema import ServiceSchema

schema = ServiceSchema("orders", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

orders = sa.Table(
    "orders", metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("offer_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("location", sa.String(8), nullable=False),
    sa.Column("os", sa.String(40), nullable=False),
    sa.Column("tag", sa.String(64), nullable=True),
    sa.Column("price_month", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("operation_id", sa.String(100), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("deploy_eta", sa.String(40), nullable=True),
    sa.Column("next_attempt_at", sa.String(40), nullable=True, index=True),
    sa.Column("server_id", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    # The list's order, newest first (a backward scan), with and without its status filter:
    # a cursor page starts where the last one ended, however deep (issue 21).
    sa.Index("ix_orders_user_created_id", "user_id", "created_at", "order_id"),
    sa.Index("ix_orders_user_status_created_id", "user_id", "status", "created_at", "order_id"),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_idempotency_key"),
)

unit_claims = sa.Table(
    "unit_claims", metadata,
    sa.Column("unit_id", sa.String(80), primary_key=True),
    sa.Column("offer_id", sa.String(64), nullable=False, index=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
)


# Statuses of the read model (the saga's, plus how a customer's cancel shows).
ACTIVE_STATUSES = ("placed", "paid", "failing", "cancelling")
STATUSES = ACTIVE_STATUSES + ("completed", "failed", "cancelled")


# The customer's list, newest first; orders placed at the same instant by id.
list_order = NewestFirst(orders.c.created_at, orders.c.order_id)


def claimed_counts(conn):
    """How many units of each offer are claimed (reserved or sold): ``{offer_id: count}``."""
    rows = conn.execute(sa.select(unit_claims.c.offer_id, sa.func.count()).group_by(unit_claims.c.offer_id))
    return {offer_id: count for offer_id, count in rows}


def order_of(conn, user_id, order_id):
    """The customer's order, None when there is no such order of theirs."""
    return conn.execute(sa.select(orders).where(orders.c.order_id == order_id,
                                                orders.c.user_id == user_id)).mappings().first()


def order_by_key(conn, user_id, idempotency_key):
    """The customer's order placed with ``idempotency_key``, None when there is none."""
    return conn.execute(sa.select(orders).where(orders.c.user_id == user_id,
                                                orders.c.idempotency_key == idempotency_key)).mappings().first()


def order_page(conn, user_id, status, page, per_page, position=None):
    """``(rows, total, next_cursor)`` of the customer's orders (in ``status``, if any), newest first."""
    where = [orders.c.user_id == user_id] + ([orders.c.status == status] if status else [])
    return list_order.read(conn, where, page, per_page, position)


def next_attempt_of(conn, order_id):
    """When the order's next step is due (ISO), None when nothing is scheduled or no such order."""
    return conn.execute(sa.select(orders.c.next_attempt_at).where(orders.c.order_id == order_id)).scalar()


def due_order_ids(conn, now, limit):
    """The ids of up to ``limit`` active orders whose next step is due at ``now`` (ISO), soonest first."""
    return [row[0] for row in conn.execute(
        sa.select(orders.c.order_id).where(orders.c.status.in_(ACTIVE_STATUSES), orders.c.next_attempt_at <= now)
        .order_by(orders.c.next_attempt_at).limit(limit))]


def _order_id(event):
    return event.stream_id.removeprefix("order-")


class OrdersProjection(Projection):
    tables = (orders, unit_claims)

    def _update(self, conn, event, **values):
        values["updated_at"] = event.recorded_at.isoformat()
        conn.execute(orders.update().where(orders.c.order_id == _order_id(event)).values(**values))

    def when_order_placed(self, conn, event):
        data = event.data
        conn.execute(orders.insert().values(
            order_id=data["order_id"], user_id=data["user_id"], offer_id=data["offer_id"], kind=data["kind"],
            name=data["name"], location=data["location"], os=data["os"], tag=data.get("tag"),
            price_month=data["price_month"], status="placed", operation_id=data["operation_id"],
            idempotency_key=data.get("idempotency_key"), deploy_eta=data.get("deploy_eta"),
            next_attempt_at=data["placed_at"], created_at=data["placed_at"], updated_at=data["placed_at"]))

    def when_order_charged(self, conn, event):
        # Provisioning is due at once (instant) or when the deploy date comes (stock).
        self._update(conn, event, status="paid", next_attempt_at=event.data.get("due_at") or event.recorded_at.isoformat())

    def when_order_step_failed(self, conn, event):
        self._update(conn, event, reason=event.data["reason"], next_attempt_at=event.data.get("retry_at"))

    def when_order_failing(self, conn, event):
        status = "cancelling" if event.data.get("cancelled") else "failing"
        self._update(conn, event, status=status, reason=event.data["reason"],
                     next_attempt_at=event.recorded_at.isoformat())

    def when_order_refunded(self, conn, event):
        self._update(conn, event)

    def when_order_completed(self, conn, event):
        self._update(conn, event, status="completed", server_id=event.data["server_id"], next_attempt_at=None,
                     reason=None)

    def when_order_failed(self, conn, event):
        status = "cancelled" if event.data.get("cancelled") else "failed"
        self._update(conn, event, status=status, reason=event.data["reason"], next_attempt_at=None)

    def when_unit_reserved(self, conn, event):
        data = event.data
        conn.execute(unit_claims.insert().values(unit_id=data["unit_id"], offer_id=data["offer_id"],
                                                 order_id=data["order_id"], status="reserved"))

    def when_unit_sold(self, conn, event):
        conn.execute(unit_claims.update().where(unit_claims.c.unit_id == event.data["unit_id"]).values(status="sold"))

    def when_unit_released(self, conn, event):
        conn.execute(unit_claims.delete().where(unit_claims.c.unit_id == event.data["unit_id"]))


schema.add_projection(OrdersProjection())
