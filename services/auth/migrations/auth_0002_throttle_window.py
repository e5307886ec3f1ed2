"""Throttles of shared keys (client addresses) count failures per window: when it opened.

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "auth_0002"
down_revision = "auth_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("throttles", sa.Column("window_started_at", sa.String(40), nullable=True))


def downgrade():
    op.drop_column("throttles", "window_started_at")
