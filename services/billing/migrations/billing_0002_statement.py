"""Billing: the statement (every credit and debit of each balance).

Existing balances' history is filled by ``panel rebuild-projections billing``.

Revision ID: billing_0002
Revises: billing_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "billing_0002"
down_revision = "billing_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ledger",
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


def downgrade():
    op.drop_table("ledger")
