"""The customer's order list through an index in its own order (issue 21): created_at
then order_id, with and without the status filter, so a ``cursor`` page is a range of the
index; the old (user_id, created_at) index is a prefix of the new one and goes.

Revision ID: orders_0002
Revises: orders_0001
Create Date: 2026-12-07
"""
from alembic import op

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_orders_user_created_id", "orders", ["user_id", "created_at", "order_id"])
    op.create_index("ix_orders_user_status_created_id", "orders", ["user_id", "status", "created_at", "order_id"])
    op.drop_index("ix_orders_user_created", "orders")


def downgrade():
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.drop_index("ix_orders_user_status_created_id", "orders")
    op.drop_index("ix_orders_user_created_id", "orders")
