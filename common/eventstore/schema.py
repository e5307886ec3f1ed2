"""Tables every service database has: the event log, the relay checkpoints and the inbox.

``define_core_tables(metadata)`` adds them to a service's own ``MetaData``, beside its
projection tables, so each service keeps one schema in one database. Migrations create
them through ``create_core_tables_v1``.
"""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class CoreTables:
    events: sa.Table
    relay_checkpoints: sa.Table
    inbox: sa.Table


def define_core_tables(metadata):
    events = sa.Table(
        "events",
        metadata,
        # Global order of the log. SQLite only autoincrements an INTEGER primary key.
        sa.Column("position", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        # The optimistic-concurrency check: one event per (stream, version).
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    )
    relay_checkpoints = sa.Table(
        "relay_checkpoints",
        metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", BIGINT, nullable=False, server_default="0"),
        # A lease so that one replica at a time relays, keeping publish order.
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    return CoreTables(events, relay_checkpoints, inbox)


def create_core_tables_v1(op):
    """Alembic operation creating the core tables as of schema version 1.

    Built from ``define_core_tables`` while that is still version 1. Before changing
    ``define_core_tables``, paste its current body here (freezing v1) and write the change
    as a new migration function.
    """
    metadata = sa.MetaData()
    define_core_tables(metadata)
    metadata.create_all(op.get_bind())
