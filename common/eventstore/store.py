"""The append-only event store every service keeps its state in.

- ``append`` writes events to a stream at an expected version; the unique
  (stream_id, version) constraint turns a stale version into ``ConcurrencyConflict``.
- Projections (read models) are updated in the same transaction as the append, so a query
  right after a command sees its effect, and ``rebuild_projections`` replays the whole log.
- Commits are totally ordered by ``position``: SQLite has one writer at a time, and on
  PostgreSQL every appending transaction takes one advisory lock, so a position is never
  committed after a higher one. The outbox relay depends on that to never skip an event.
- The inbox records the events a consumer has processed, in the effects' transaction.
"""

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from common import context
from common.eventstore.events import NewEvent  # noqa: F401 - part of the store's API
from common.db import IMMEDIATE, is_locked_error, is_sqlite, wait_for_write_lock
from common.errors import ConcurrencyConflict

ANY_VERSION = None
# Key of the PostgreSQL advisory lock that orders appends (any constant; "panel-ev").
APPEND_LOCK_KEY = 0x70616E656C2D6576


def utcnow():
    return datetime.now(timezone.utc)


def as_utc(moment):
    """Every datetime we hand out is aware UTC: SQLite returns naive ones (stored in UTC),
    PostgreSQL aware ones in its session's time zone, which need not be UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored in the log."""

    position: int
    stream_id: str
    version: int
    type: str
    data: dict
    metadata: dict
    recorded_at: datetime

    @property
    def event_id(self):
        return self.metadata["event_id"]


class AggregateRepository:
    """Aggregates by class and key (``common.eventstore.aggregate``), over ``load_stream``
    and ``append``: mixed into the store (each call its own transaction) and into a
    ``Transaction`` (everything commits together)."""

    def get(self, aggregate_cls, key):
        """The aggregate as its stream has it now (``exists`` is False for a new key)."""
        return aggregate_cls.replay(key, self.load_stream(aggregate_cls.stream_of(key)))

    def save(self, aggregate, events, metadata=None):
        """Append ``events`` to the aggregate's stream at the version it was read at;
        ``ConcurrencyConflict`` when another writer moved the stream on (``retrying``)."""
        return self.append(aggregate.stream_id, aggregate.version, events, metadata)

    def create(self, aggregate_cls, key, events, metadata=None):
        """Record a new aggregate's first events; ``ConcurrencyConflict`` when that
        aggregate exists already."""
        return self.append(aggregate_cls.stream_of(key), 0, events, metadata)


class Transaction(AggregateRepository):
    """One write transaction: appends, projection updates and inbox records commit together."""

    def __init__(self, store, conn):
        self.store = store
        self.conn = conn
        self.recorded = []
        self._ordered = False

    def append(self, stream_id, expected_version, events, metadata=None):
        """Append ``events`` to ``stream_id``, which must be at ``expected_version``
        (0 for a new stream; ``ANY_VERSION`` to skip the check). Returns the recorded
        events; raises ``ConcurrencyConflict`` when the stream has moved on."""
        events = list(events)
        if not events:
            return []
        self.lock_log()
        current = self.conn.execute(self.store.statements.stream_version, {"stream_id": stream_id}).scalar_one()
        if expected_version is not ANY_VERSION and current != expected_version:
            raise ConcurrencyConflict(
                f"stream {stream_id} is at version {current}, not {expected_version}",
                extra={"stream_id": stream_id, "expected_version": expected_version},
            )
        base_metadata = self.store.metadata_from_context(metadata)
        now = utcnow()
        rows = []
        for offset, event in enumerate(events, start=1):
            rows.append(
                {
                    "stream_id": stream_id,
                    "version": current + offset,
                    "type": event.type,
                    "data": event.data,
                    "metadata": dict(base_metadata, event_id=context.new_id()),
                    "recorded_at": now,
                }
            )
        recorded = []
        try:
            # One prepared statement per row (compiled once per store): the position comes back
            # with each row, in order, on every backend.
            for row in rows:
                position = self.conn.execute(self.store.statements.insert_event, row).scalar_one()
                recorded.append(RecordedEvent(position=position, **row))
        except IntegrityError as exc:
            raise ConcurrencyConflict(
                f"stream {stream_id} was appended to concurrently",
                extra={"stream_id": stream_id, "expected_version": expected_version},
            ) from exc
        for event in recorded:
            self.store.project(self.conn, event)
        self.recorded.extend(recorded)
        return recorded

    def load_stream(self, stream_id, after_version=0):
        return self.store.load_stream(stream_id, after_version, conn=self.conn)

    def record_inbox(self, consumer, event_id):
        """Mark ``event_id`` processed by ``consumer``. False when it already was: the
        caller then skips its effects (a redelivery)."""
        table = self.store.tables.inbox
        dialect_insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        result = self.conn.execute(
            dialect_insert(table)
            .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
            .on_conflict_do_nothing()
        )
        return result.rowcount == 1

    def lock_log(self):
        """Take the log's append order now (appends do it themselves): after this, reads in
        this transaction see every committed event and no other writer appends until it
        ends — e.g. to hand out the next sequential number."""
        if not self._ordered and self.conn.dialect.name == "postgresql":
            self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
        self._ordered = True


class Statements:
    """The store's hot statements, built once so SQLAlchemy compiles them once."""

    def __init__(self, tables):
        events = tables.events
        self.stream_version = sa.select(sa.func.coalesce(sa.func.max(events.c.version), 0)).where(
            events.c.stream_id == sa.bindparam("stream_id"))
        self.insert_event = events.insert().returning(events.c.position)
        self.last_position = sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))


class EventStore(AggregateRepository):
    """A service's event log, with its projections, on one SQLAlchemy engine."""

    def __init__(self, engine, tables, projections=()):
        self.engine = engine
        self.tables = tables
        self.statements = Statements(tables)
        # The hottest read (health, the outbox relay after every commit) as plain SQL for
        # this engine's dialect: run on a pooled DBAPI connection it costs a few
        # microseconds instead of SQLAlchemy's ~40 per execution.
        self._last_position_sql = str(self.statements.last_position.compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        self.projections = list(projections)
        self._commit_listeners = []
        # SQLite allows one writer; queue writers of this process here (cooperatively under
        # eventlet) instead of inside SQLite's busy wait, which would block the whole hub.
        self._write_lock = threading.Lock() if is_sqlite(engine.url) else None

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _write_connection(self):
        if self._write_lock is not None:
            self._write_lock.acquire()
        try:
            with self.engine.connect().execution_options(**{IMMEDIATE: True}) as conn:
                yield conn
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    def _begin(self, conn):
        """BEGIN; on SQLite, wait cooperatively while another process writes."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return conn.begin()
            except OperationalError as error:
                if not (is_locked_error(error) and wait_for_write_lock(attempt, started)):
                    raise
                conn.rollback()
                attempt += 1

    @contextmanager
    def transaction(self):
        """A write transaction; commits when the block ends, rolls back on an exception."""
        with self._write_connection() as conn:
            with self._begin(conn):
                tx = Transaction(self, conn)
                yield tx
        if tx.recorded:
            for listener in self._commit_listeners:
                listener(tx.recorded)

    def append(self, stream_id, expected_version, events, metadata=None):
        """Append in a transaction of its own; see ``Transaction.append``."""
        with self.transaction() as tx:
            return tx.append(stream_id, expected_version, events, metadata)

    def on_commit(self, listener):
        """Call ``listener(recorded_events)`` after each commit that appended events."""
        self._commit_listeners.append(listener)

    @staticmethod
    def metadata_from_context(extra=None):
        """Event metadata: the ids of the current call, plus ``extra``."""
        values = context.current()
        metadata = {key: values.get(key) for key in context.EVENT_METADATA_KEYS}
        metadata.update(extra or {})
        return {k: v for k, v in metadata.items() if v is not None}

    # -- reading ---------------------------------------------------------------------------

    def read(self, query, *args):
        """Run a read-model query function, ``query(conn, *args)`` (one of a service's
        ``projections``), on a fresh connection, and return its answer."""
        with self.engine.connect() as conn:
            return query(conn, *args)

    def load_stream(self, stream_id, after_version=0, conn=None):
        """The events of one stream in version order."""
        events = self.tables.events
        query = (
            sa.select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        return self._fetch(query, conn)

    def read_after(self, position, limit=1000, types=None, conn=None):
        """Up to ``limit`` events after ``position`` in log order (optionally of ``types``)."""
        events = self.tables.events
        query = sa.select(events).where(events.c.position > position)
        if types is not None:
            query = query.where(events.c.type.in_(list(types)))
        return self._fetch(query.order_by(events.c.position).limit(limit), conn)

    def last_position(self, conn=None):
        """The position of the newest event (0 for an empty log). Without ``conn``: one
        statement on a pooled connection, outside any transaction of ours (SQLite
        autocommit; PostgreSQL's implicit one is rolled back when the pool takes the
        connection back)."""
        if conn is not None:
            return conn.execute(self.statements.last_position).scalar_one()
        dbapi_connection = self.engine.raw_connection()
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(self._last_position_sql)
                return cursor.fetchone()[0]
            finally:
                cursor.close()
        except Exception:
            # The driver's own error (not SQLAlchemy's); whatever it was, this connection
            # does not go back to the pool (a lost server: the next checkout's ping finds out).
            dbapi_connection.invalidate()
            raise
        finally:
            dbapi_connection.close()

    def _fetch(self, query, conn):
        if conn is not None:
            rows = conn.execute(query).mappings().all()
        else:
            with self.engine.connect() as own:
                rows = own.execute(query).mappings().all()
        return [
            RecordedEvent(
                position=row["position"],
                stream_id=row["stream_id"],
                version=row["version"],
                type=row["type"],
                data=row["data"],
                metadata=row["metadata"],
                recorded_at=as_utc(row["recorded_at"]),
            )
            for row in rows
        ]

    # -- projections -----------------------------------------------------------------------

    def project(self, conn, event):
        for projection in self.projections:
            projection.apply(conn, event)

    def rebuild_projections(self, batch=2000, dry_run=False):
        """Empty every projection table and replay the whole log through the projections,
        in one transaction (rolled back when ``dry_run``). Returns the number of events
        replayed and the snapshot of the rebuilt read models."""
        replayed = 0
        with self._write_connection() as conn:
            transaction = self._begin(conn)
            try:
                if conn.dialect.name == "postgresql":
                    # No command appends (nor updates a projection) until the rebuild ends;
                    # SQLite's write lock, taken by ``_begin``, does the same there.
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
                for projection in reversed(self.projections):
                    projection.clear(conn)
                position = 0
                while chunk := self.read_after(position, limit=batch, conn=conn):
                    for event in chunk:
                        self.project(conn, event)
                    position = chunk[-1].position
                    replayed += len(chunk)
                snapshot = self.snapshot_projections(conn)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        return replayed, snapshot

    def snapshot_projections(self, conn=None):
        """Every projection table's rows, sorted: what a rebuild must reproduce."""
        if conn is None:
            with self.engine.connect() as own:
                return self.snapshot_projections(own)
        snapshot = {}
        for projection in self.projections:
            for table in projection.tables:
                rows = conn.execute(sa.select(table)).mappings().all()
                snapshot[table.name] = sorted(
                    tuple(sorted((k, repr(v)) for k, v in row.items())) for row in rows
                )
        return snapshot


def retrying(command, attempts=6):
    """Run ``command`` (which reads a stream and appends at the version it read) again when
    a concurrent writer got there first; the last ``ConcurrencyConflict`` is raised."""
    for attempt in range(attempts):
        try:
            return command()
        except ConcurrencyConflict:
            if attempt == attempts - 1:
                raise
