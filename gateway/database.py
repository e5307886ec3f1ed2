"""The gateway's database: its sessions and its idempotent requests, and their migrations.

The gateway's only state (``gateway.sessions``, ``gateway.idempotency``) lives in these two
tables, shared by every gateway instance. ``HISTORY`` hands them and the revisions in
``gateway/migrations/`` to ``common.migrations``.
"""

from pathlib import Path

import sqlalchemy as sa

from common.migrations import History

metadata = sa.MetaData()
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("absolute_expiry", sa.DateTime(timezone=True), nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(300), nullable=True),
)


idempotent_requests = sa.Table(
    "idempotent_requests", metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)


HISTORY = History("gateway", metadata, (Path(__file__).parent / "migrations",))
