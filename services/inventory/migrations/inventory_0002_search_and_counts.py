"""Search and deep pages through indexes (issue 21): the number as an integer
(``number_seq``), the tag in lower case (``tag_key``), addresses normalised, indexes that
end with ``number_seq`` for every sort, and ``server_counts`` for the lists' totals.

Revision ID: inventory_0002
Revises: inventory_0001
Create Date: 2026-12-07
"""
import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "inventory_0002"
down_revision = "inventory_0001"
branch_labels = None
depends_on = None


def code_point_text(length):
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def address_key(ip):
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        return ip.strip().lower()


def upgrade():
    conn = op.get_bind()
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("number_seq", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tag_key", code_point_text(64), nullable=False, server_default=""))
        if conn.dialect.name == "postgresql":
            batch.alter_column("number", type_=code_point_text(32), existing_nullable=False)
    servers = sa.table("servers", sa.column("server_id"), sa.column("user_id"), sa.column("number"),
                       sa.column("number_seq"), sa.column("tag"), sa.column("tag_key"), sa.column("location"),
                       sa.column("status"))
    for row in conn.execute(sa.select(servers.c.server_id, servers.c.number, servers.c.tag)).all():
        conn.execute(servers.update().where(servers.c.server_id == row.server_id).values(
            number_seq=int(row.number.rsplit("-", 1)[-1]), tag_key=(row.tag or "").strip().lower()))
    with op.batch_alter_table("servers") as batch:
        batch.alter_column("number_seq", existing_type=sa.Integer, nullable=False)
        batch.drop_index("ix_servers_user_location")
        batch.drop_index("ix_servers_user_status")
        batch.drop_index("ix_servers_user_tag")
    op.create_index("ix_servers_user_seq", "servers", ["user_id", "number_seq"])
    op.create_index("ix_servers_user_location_seq", "servers", ["user_id", "location", "number_seq"])
    op.create_index("ix_servers_user_status_seq", "servers", ["user_id", "status", "number_seq"])
    op.create_index("ix_servers_user_tag_seq", "servers", ["user_id", "tag_key", "number_seq"])
    op.create_index("ix_servers_user_paid_seq", "servers", ["user_id", "paid_until", "number_seq"])

    if conn.dialect.name == "postgresql":
        with op.batch_alter_table("server_ips") as batch:
            batch.alter_column("ip", type_=code_point_text(45), existing_nullable=False)
    ips = sa.table("server_ips", sa.column("server_id"), sa.column("ip"), sa.column("user_id"))
    for row in conn.execute(sa.select(ips.c.server_id, ips.c.ip, ips.c.user_id)).all():
        key = address_key(row.ip)
        if key != row.ip:
            conn.execute(ips.delete().where(ips.c.server_id == row.server_id, ips.c.ip == row.ip))
            exists = conn.execute(sa.select(ips.c.ip).where(ips.c.server_id == row.server_id, ips.c.ip == key)).first()
            if exists is None:
                conn.execute(ips.insert().values(server_id=row.server_id, ip=key, user_id=row.user_id))

    counts = op.create_table(
        "server_counts",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("location", sa.String(8), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("servers", sa.Integer, nullable=False),
    )
    grouped = conn.execute(sa.select(servers.c.user_id, servers.c.location, servers.c.status, sa.func.count())
                           .group_by(servers.c.user_id, servers.c.location, servers.c.status)).all()
    if grouped:
        op.bulk_insert(counts, [{"user_id": u, "location": loc, "status": st, "servers": n}
                                for u, loc, st, n in grouped])


def downgrade():
    op.drop_table("server_counts")
    for name in ("ix_servers_user_paid_seq", "ix_servers_user_tag_seq", "ix_servers_user_status_seq",
                 "ix_servers_user_location_seq", "ix_servers_user_seq"):
        op.drop_index(name, "servers")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("tag_key")
        batch.drop_column("number_seq")
    op.create_index("ix_servers_user_location", "servers", ["user_id", "location"])
    op.create_index("ix_servers_user_status", "servers", ["user_id", "status"])
    op.create_index("ix_servers_user_tag", "servers", ["user_id", "tag"])
