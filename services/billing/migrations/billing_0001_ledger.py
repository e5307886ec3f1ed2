"""Billing read models: accounts, top-ups, invoices, subscriptions.

Revision ID: billing_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "billing_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("balance", sa.String(20), nullable=False),
    )
    op.create_table(
        "topups",
        sa.Column("topup_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("amount", sa.String(20), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("provider_payment_id", sa.String(200), nullable=False, unique=True),
        sa.Column("redirect_url", sa.String(1000), nullable=True),
        sa.Column("instructions", JSON, nullable=True),
        sa.Column("operation_id", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_topups_user_idempotency_key"),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("server_number", sa.String(32), nullable=False),
        sa.Column("amount", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=False),
        sa.Column("period_end", sa.String(10), nullable=False),
        sa.Column("issued_on", sa.String(10), nullable=False),
        sa.Column("paid_on", sa.String(10), nullable=True),
    )
    op.create_table(
        "subscriptions",
        sa.Column("server_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("price_month", sa.String(20), nullable=False),
        sa.Column("paid_until", sa.String(10), nullable=False, index=True),
        sa.Column("open_invoice", sa.String(64), nullable=True),
    )


def downgrade():
    for table in ("subscriptions", "invoices", "topups", "accounts"):
        op.drop_table(table)
