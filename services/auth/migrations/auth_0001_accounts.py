"""Auth read models: users, password resets, login throttles.

Revision ID: auth_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("two_factor", sa.Boolean, nullable=False),
        sa.Column("totp", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("reset_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "throttles",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.String(40), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade():
    for table in ("throttles", "password_resets", "users"):
        op.drop_table(table)
