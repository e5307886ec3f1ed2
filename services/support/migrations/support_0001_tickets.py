"""Support read models: tickets, their messages and attachments' metadata.

Revision ID: support_0001
Revises: core_0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "support_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("server_id", sa.String(64), nullable=True),
        sa.Column("server_number", sa.String(32), nullable=True),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("last_author", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_tickets_user_idempotency_key"),
    )
    op.create_table(
        "ticket_messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("staff_name", sa.String(64), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.UniqueConstraint("ticket_id", "idempotency_key", name="uq_ticket_messages_idempotency_key"),
    )
    op.create_table(
        "ticket_attachments",
        sa.Column("attachment_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
        sa.Column("message_id", sa.String(64), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
    )


def downgrade():
    for table in ("ticket_attachments", "ticket_messages", "tickets"):
        op.drop_table(table)
