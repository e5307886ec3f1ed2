"""Notify read model: the action log.

Revision ID: notify_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("position", BIGINT, nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("operation_id", sa.String(64), nullable=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("read", sa.Boolean, nullable=False),
    )
    op.create_index("ix_notifications_user_position", "notifications", ["user_id", "position"])
    op.create_index("ix_notifications_user_session", "notifications", ["user_id", "session_id", "position"])


def downgrade():
    op.drop_table("notifications")
