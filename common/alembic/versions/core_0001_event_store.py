"""Core tables every service database starts with: events, relay checkpoints, inbox and the
operations read model.

Revision ID: core_0001
Revises:
Create Date: 2026-11-23
"""
from alembic import op

from common.eventstore import create_core_tables_v1
from common.operations import create_operations_table_v1

revision = "core_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_core_tables_v1(op)
    create_operations_table_v1(op)


def downgrade():
    for table in ("operations", "inbox", "relay_checkpoints", "events"):
        op.drop_table(table)
