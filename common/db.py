"""Database engines: SQLite files by default, PostgreSQL through ``DATABASE_URL``.

SQLite is set up for an event store: WAL (readers never block the writer),
``synchronous=NORMAL`` (a commit survives a process crash; the last commits may be lost on
power loss, which is the documented trade-off of the single-machine default) and a busy
timeout. Write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock
on a lock upgrade. PostgreSQL goes through psycopg2, which ``eventlet.monkey_patch()``
makes cooperative.
"""

import time
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy import event

IMMEDIATE = "panel_begin_immediate"
SQLITE_BUSY_SECONDS = 0.05
WRITE_LOCK_PATIENCE_SECONDS = 30.0


def is_locked_error(error):
    """SQLite's "database is locked": another process holds the write lock."""
    return "database is locked" in str(getattr(error, "orig", error)).lower()


def wait_for_write_lock(attempt, started):
    """Back off cooperatively (other greenthreads run meanwhile) before trying again;
    False once the patience is used up."""
    if time.monotonic() - started > WRITE_LOCK_PATIENCE_SECONDS:
        return False
    time.sleep(min(0.005 * 2 ** attempt, 0.1))
    return True


def is_sqlite(url):
    return str(url).startswith("sqlite")


def _json_dumps(value):
    return orjson.dumps(value).decode()


def create_engine(url, **kwargs):
    """An engine for ``url`` (a relative SQLite path is relative to the working directory,
    whose folder is created if missing)."""
    url = sa.engine.make_url(url)
    # Event data and metadata are JSON: orjson reads a replayed log about a quarter faster.
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.drivername.startswith("sqlite"):
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # A short busy wait inside SQLite (it blocks the eventlet hub while it waits); longer
        # waits for another process's write lock are retried cooperatively by the caller
        # (``EventStore`` and ``begin_write``).
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}, **kwargs
        )
        _setup_sqlite(engine)
        return engine
    if url.drivername == "postgresql":
        # SQLAlchemy 2.1 would pick psycopg 3, whose binary build blocks the eventlet hub;
        # psycopg2 is made cooperative by eventlet.monkey_patch().
        url = url.set(drivername="postgresql+psycopg2")
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return sa.create_engine(url, **kwargs)


def _setup_sqlite(engine):
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Take transaction control from the sqlite3 module so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        options = connection.get_execution_options()
        mode = "IMMEDIATE" if options.get(IMMEDIATE) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")
