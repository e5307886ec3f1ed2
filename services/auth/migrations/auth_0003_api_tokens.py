"""API tokens: the read model of each customer's tokens, and when each was last used.

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=True),
        sa.Column("revoked_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "api_token_usage",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("last_used_at", sa.String(40), nullable=False),
        sa.Column("last_used_ip", sa.String(64), nullable=True),
    )


def downgrade():
    op.drop_table("api_token_usage")
    op.drop_table("api_tokens")
