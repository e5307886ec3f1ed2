"""Orders read models: orders and the claimed units of each offer.

Revision ID: orders_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "orders_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("offer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("location", sa.String(8), nullable=False),
        sa.Column("os", sa.String(40), nullable=False),
        sa.Column("tag", sa.String(64), nullable=True),
        sa.Column("price_month", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("operation_id", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("deploy_eta", sa.String(40), nullable=True),
        sa.Column("next_attempt_at", sa.String(40), nullable=True, index=True),
        sa.Column("server_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Index("ix_orders_user_created", "user_id", "created_at"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_idempotency_key"),
    )
    op.create_table(
        "unit_claims",
        sa.Column("unit_id", sa.String(80), primary_key=True),
        sa.Column("offer_id", sa.String(64), nullable=False, index=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
    )


def downgrade():
    op.drop_table("unit_claims")
    op.drop_table("orders")
