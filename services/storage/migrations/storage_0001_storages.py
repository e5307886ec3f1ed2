"""Storage read models (storages, buckets) and the usage time series.

Revision ID: storage_0001
Revises: core_0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "storage_0001"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "storages",
        sa.Column("storage_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger, nullable=False),
        sa.Column("location", sa.String(8), nullable=False),
        sa.Column("s3uid", sa.String(32), nullable=False, unique=True),
        sa.Column("iam_user", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("access_key", sa.String(128), nullable=True),
        sa.Column("writes_suspended", sa.Boolean, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_storages_user_idempotency_key"),
    )
    op.create_table(
        "buckets",
        sa.Column("location", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("storage_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("operation_id", sa.String(100), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "usage_samples",
        sa.Column("sample_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("storage_id", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.Column("bytes_in", sa.BigInteger, nullable=True),
        sa.Column("bytes_out", sa.BigInteger, nullable=True),
        sa.Column("meter_epoch", sa.String(64), nullable=True),
        sa.Column("meter_in", sa.BigInteger, nullable=True),
        sa.Column("meter_out", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_usage_samples_storage_at", "usage_samples", ["storage_id", "at"])


def downgrade():
    for table in ("usage_samples", "buckets", "storages"):
        op.drop_table(table)
