"""Inventory read models: servers and their addresses.

Revision ID: inventory_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "inventory_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "servers",
        sa.Column("server_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("tag", sa.String(64), nullable=True),
        sa.Column("location", sa.String(8), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("power", sa.String(10), nullable=False),
        sa.Column("plan", sa.String(100), nullable=False),
        sa.Column("os", sa.String(40), nullable=False),
        sa.Column("paid_until", sa.String(10), nullable=False),
        sa.Column("price_month", sa.String(20), nullable=False),
        sa.Column("hardware", JSON, nullable=False),
        sa.Column("ips", JSON, nullable=False),
        sa.Column("bmc", JSON, nullable=False),
        sa.Column("primary_ip", sa.String(45), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_servers_user_number", "servers", ["user_id", "number"])
    op.create_index("ix_servers_user_location", "servers", ["user_id", "location"])
    op.create_index("ix_servers_user_status", "servers", ["user_id", "status"])
    op.create_index("ix_servers_user_tag", "servers", ["user_id", "tag"])
    op.create_table(
        "server_ips",
        sa.Column("server_id", sa.String(64), primary_key=True),
        sa.Column("ip", sa.String(45), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_server_ips_user_ip", "server_ips", ["user_id", "ip"])


def downgrade():
    op.drop_table("server_ips")
    op.drop_table("servers")
