"""Operations: long work a customer asked for (DESIGN.md "Operations").

Status moves ``pending`` → ``running`` → ``succeeded`` | ``failed``. Each step is an event in
the owning service's log, in stream ``operation-<id>``, whose data is the whole operation
view, so every consumer (notify, the gateway) can show it without asking back:

- ``operation_requested`` (pending): appended in the same transaction as the command that
  accepted the work. The outbox publishes it; the owning service consumes it from its own
  exchange with a reliable handler and does the work, acking only afterwards. So accepted
  work survives a crash or broker restart: it is redelivered and resumed.
- ``operation_started`` (running), then exactly one of ``operation_succeeded`` /
  ``operation_failed``.

``Operation`` is the pure state machine (no I/O); ``Operations`` runs it on an event store
and keeps the ``operations`` read model of the service.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from common import context
from common.contracts import OPERATION_FIELDS
from common.errors import Conflict, NotFound, PanelError
from common.eventstore import NewEvent, Projection, utcnow
from common.eventstore.schema import JSON

log = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED)
TERMINAL = (SUCCEEDED, FAILED)


class OperationFailed(Exception):
    """Raised by a work function to fail its operation with ``detail`` shown to the customer."""

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


def stream_of(operation_id):
    return f"operation-{operation_id}"


def owner_of(operation_id):
    """The service that owns an operation, from its id."""
    return str(operation_id).split("-", 1)[0]


@dataclass
class Operation:
    """The state of one operation, folded from its events."""

    view: dict
    version: int
    params: dict

    @classmethod
    def replay(cls, events):
        if not events:
            return None
        # Only the request carries the parameters; later events carry the view alone.
        return cls(view=dict(events[-1].data), version=events[-1].version,
                   params=dict(events[0].data.get("params") or {}))

    @property
    def status(self):
        return self.view["status"]

    @staticmethod
    def request(*, operation_id, service, kind, target, title, user_id, session_id, params, now):
        view = {
            "operation_id": operation_id, "user_id": user_id, "session_id": session_id,
            "service": service, "kind": kind, "target": target, "status": PENDING,
            "title": title, "detail": "Queued", "created_at": now, "started_at": None,
            "finished_at": None, "params": params or {},
        }
        return NewEvent("operation_requested", view)

    def start(self, now):
        if self.status == RUNNING:
            return []  # resumed after a crash: the start was already recorded
        if self.status != PENDING:
            raise Conflict(f"operation is {self.status}; it cannot start")
        return [self._next("operation_started", status=RUNNING, detail="Running", started_at=now)]

    def succeed(self, detail, result, now):
        self._require_running()
        return [self._next("operation_succeeded", status=SUCCEEDED, detail=detail,
                           finished_at=now, result=result or {})]

    def fail(self, detail, now):
        if self.status in TERMINAL:
            raise Conflict(f"operation is already {self.status}")
        return [self._next("operation_failed", status=FAILED, detail=detail, finished_at=now)]

    def conclude(self, succeeded, detail, result, now):
        """Start (if still pending) and finish in one go; [] when already finished — for
        outcomes that arrive from outside (a payment notification) rather than from work."""
        if self.status in TERMINAL:
            return []
        events, current = [], self
        if self.status == PENDING:
            events += self.start(now)
            current = Operation(view=dict(events[-1].data), version=self.version + 1, params=self.params)
        events += current.succeed(detail, result, now) if succeeded else current.fail(detail, now)
        return events

    def _require_running(self):
        if self.status != RUNNING:
            raise Conflict(f"operation is {self.status}, not running")

    def _next(self, event_type, **changes):
        view = {k: v for k, v in self.view.items() if k in OPERATION_FIELDS}
        view.update(changes)
        return NewEvent(event_type, view)


def define_operations_table(metadata):
    return sa.Table(
        "operations",
        metadata,
        sa.Column("operation_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=True, index=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=True, index=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=True),
        sa.Column("finished_at", sa.String(40), nullable=True),
    )


def create_operations_table_v1(op):
    """Alembic operation creating the ``operations`` table as of schema version 1 (built from
    ``define_operations_table`` while that is still version 1: freeze it here first
    before changing that)."""
    metadata = sa.MetaData()
    define_operations_table(metadata)
    metadata.create_all(op.get_bind())


class OperationsProjection(Projection):
    """The ``operations`` read model: one row per operation, its latest view."""

    def __init__(self, table):
        self.table = table
        self.tables = (table,)

    def when_operation_requested(self, conn, event):
        row = {c.name: event.data.get(c.name) for c in self.table.columns}
        row["params"] = event.data.get("params") or {}
        conn.execute(self.table.insert().values(**row))

    def _update(self, conn, event):
        changes = {k: event.data.get(k) for k in ("status", "detail", "started_at", "finished_at")}
        if "result" in event.data:
            changes["result"] = event.data["result"]
        conn.execute(
            self.table.update().where(self.table.c.operation_id == event.data["operation_id"]).values(**changes)
        )

    when_operation_started = _update
    when_operation_succeeded = _update
    when_operation_failed = _update


def public_view(row):
    """The operation as the API shows it (API.md "Operations")."""
    return {
        "id": row["operation_id"], "kind": row["kind"], "status": row["status"],
        "title": row["title"], "detail": row["detail"], "target": row["target"],
        "service": row["service"], "created_at": row["created_at"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
    }


def _now():
    return utcnow().isoformat()


class Operations:
    """Operations of one service on its event store."""

    def __init__(self, store, service, table):
        self.store = store
        self.service = service
        self.table = table

    def new_id(self):
        """Operation ids name their service (``inventory-3f2a…``), so the gateway asks the
        owner directly; to clients they are opaque strings."""
        return f"{self.service}-{context.new_id()}"

    def id_for(self, kind, target, user_id):
        """The id of the operation a customer's command starts, and the operation already
        accepted with that id (None when there is none): the id is derived from the
        request's ``Idempotency-Key`` when it has one, so the command sent again (its answer
        lost) finds the operation it started instead of starting a second one; without a
        key, a fresh id."""
        key = context.current().get("idempotency_key")
        if not key:
            return self.new_id(), None
        digest = hashlib.sha256(f"{user_id}\n{key}\n{kind}\n{target}".encode()).hexdigest()[:32]
        operation_id = f"{self.service}-{digest}"
        try:
            return operation_id, self.get(operation_id)
        except NotFound:
            return operation_id, None

    def request(self, tx, *, kind, target, title, params=None, user_id=None, operation_id=None):
        """Accept an operation inside the command's transaction ``tx``; returns its view."""
        values = context.current()
        operation_id = operation_id or self.new_id()
        event = Operation.request(
            operation_id=operation_id, service=self.service, kind=kind, target=target,
            title=title, user_id=user_id or values.get("user_id"),
            session_id=values.get("session_id"), params=params, now=_now(),
        )
        tx.append(stream_of(operation_id), 0, [event])
        return public_view(event.data)

    def _load(self, tx, operation_id):
        operation = Operation.replay(tx.load_stream(stream_of(operation_id)))
        if operation is None:
            raise NotFound("no such operation")
        return operation

    def _transition(self, operation_id, change, also=None):
        with self.store.transaction() as tx:
            operation = self._load(tx, operation_id)
            events = change(operation)
            view = dict(events[-1].data) if events else dict(operation.view)
            if events:
                tx.append(stream_of(operation_id), operation.version, events)
                if also is not None:
                    also(tx, view)
            return dict(view, params=operation.params)

    def start(self, operation_id):
        """Mark it running; returns its view with the ``params`` it was requested with."""
        return self._transition(operation_id, lambda op: op.start(_now()))

    def succeed(self, operation_id, detail, result=None, also=None):
        """Record success; ``also(tx, view)`` appends the owner's own effects (e.g. the
        server's new power state) in the same transaction."""
        return self._transition(operation_id, lambda op: op.succeed(detail, result, _now()), also)

    def fail(self, operation_id, detail, also=None):
        return self._transition(operation_id, lambda op: op.fail(detail, _now()), also)

    def conclude(self, tx, operation_id, succeeded, detail, result=None):
        """Record an outcome that arrived from outside, inside the caller's transaction
        ``tx`` (nothing when the operation already finished)."""
        operation = self._load(tx, operation_id)
        events = operation.conclude(succeeded, detail, result, _now())
        if events:
            tx.append(stream_of(operation_id), operation.version, events)

    def get(self, operation_id, user_id=None):
        """The operation's view; ``NotFound`` when it is unknown or not ``user_id``'s."""
        query = sa.select(self.table).where(self.table.c.operation_id == operation_id)
        if user_id is not None:
            query = query.where(self.table.c.user_id == user_id)
        with self.store.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("no such operation")
        return public_view(row)

    def run(self, operation_id, work, also=None):
        """Carry out an operation: start it, call ``work(view)`` → ``(detail, result)``, then
        record success; ``OperationFailed`` or any error records failure. ``also(tx, view)``
        runs in the transaction that records the outcome (either one). Safe to call again
        for the same operation (a redelivery): finished ones are left alone, running ones
        are resumed."""
        try:
            view = self.start(operation_id)
        except Conflict:
            return None  # already finished
        try:
            detail, result = work(view)
        except OperationFailed as failure:
            return self.fail(operation_id, failure.detail, also)
        except PanelError as error:
            return self.fail(operation_id, error.message, also)
        except Exception:
            log.exception("operation crashed", extra={"operation_id": operation_id, "kind": view["kind"]})
            return self.fail(operation_id, "The operation failed because of an internal error.", also)
        return self.succeed(operation_id, detail, result, also)

    def recent(self, target, user_id, limit=10):
        """The latest operations on ``target`` of ``user_id``, newest first."""
        table = self.table
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table).where(table.c.target == target, table.c.user_id == user_id)
                .order_by(table.c.created_at.desc()).limit(limit)
            ).mappings().all()
        return [public_view(row) for row in rows]

    def oldest_active_ages(self, now):
        """Seconds since the oldest ``pending`` operation was accepted and the oldest
        ``running`` one started (0 when there is none): the "stuck" alert reads them."""
        table = self.table
        with self.store.engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.min(table.c.created_at)).where(table.c.status == PENDING)).scalar()
            running = conn.execute(sa.select(sa.func.min(sa.func.coalesce(table.c.started_at, table.c.created_at)))
                                   .where(table.c.status == RUNNING)).scalar()
        ages = {}
        for status, since in ((PENDING, pending), (RUNNING, running)):
            ages[status] = max((now - datetime.fromisoformat(since)).total_seconds(), 0.0) if since else 0.0
        return ages

    def count_by_status(self):
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self.table.c.status, sa.func.count()).group_by(self.table.c.status)
            ).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({status: n for status, n in rows})
        return counts
