"""The customer's request list through an index in its own order (issue 21): updated_at
then ticket_id, so a ``cursor`` page is a range of the index.

Revision ID: support_0002
Revises: support_0001
Create Date: 2026-12-07
"""
from alembic import op

revision = "support_0002"
down_revision = "support_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tickets_user_updated_id", "tickets", ["user_id", "updated_at", "ticket_id"])


def downgrade():
    op.drop_index("ix_tickets_user_updated_id", "tickets")
