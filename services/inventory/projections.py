"""Schema and read models of the inventory service.

``servers`` holds one row per server with what lists, filters and exports need; its
addresses are also in ``server_ips`` so a search by IP is an index look-up. Every query
filters on the customer first (indexes lead with ``user_id``), so one customer's 10,000
servers never cost a scan of anyone else's.
"""

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.schema import JSON
from common.service import ServiceSchema

schema = ServiceSchema("inventory")
metadata = schema.metadata

servers = sa.Table(
    "servers", metadata,
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
    sa.Index("ix_servers_user_number", "user_id", "number"),
    sa.Index("ix_servers_user_location", "user_id", "location"),
    sa.Index("ix_servers_user_status", "user_id", "status"),
    sa.Index("ix_servers_user_tag", "user_id", "tag"),
)

server_ips = sa.Table(
    "server_ips", metadata,
    sa.Column("server_id", sa.String(64), primary_key=True),
    sa.Column("ip", sa.String(45), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Index("ix_server_ips_user_ip", "user_id", "ip"),
)


class ServersProjection(Projection):
    tables = (servers, server_ips)

    def _update(self, conn, event, **values):
        conn.execute(servers.update().where(servers.c.server_id == event.stream_id.removeprefix("server-")).values(**values))

    def when_server_provisioned(self, conn, event):
        data = event.data
        conn.execute(servers.insert().values(
            server_id=data["server_id"], user_id=data["user_id"], number=data["number"], tag=data.get("tag"),
            location=data["location"], status="active", power=data["power"], plan=data["plan"], os=data["os"],
            paid_until=data["paid_until"], price_month=str(data["price_month"]), hardware=data["hardware"],
            ips=data["ips"], bmc=data["bmc"], primary_ip=(data["ips"] or [None])[0],
            created_at=event.recorded_at.isoformat(),
        ))
        for ip in data["ips"]:
            conn.execute(server_ips.insert().values(server_id=data["server_id"], ip=ip, user_id=data["user_id"]))

    def when_server_tagged(self, conn, event):
        self._update(conn, event, tag=event.data["tag"])

    def when_server_action_finished(self, conn, event):
        changes = {k: event.data[k] for k in ("power", "os") if event.data.get(k)}
        if changes:
            self._update(conn, event, **changes)

    def when_server_marked_overdue(self, conn, event):
        self._update(conn, event, status="overdue")

    def when_server_paid(self, conn, event):
        values = {"paid_until": event.data["paid_until"]} if event.data["paid_until"] else {}
        if event.data.get("status"):
            values["status"] = event.data["status"]
        else:  # recorded before the aggregate decided the status: a payment cleared overdue
            row_status = conn.execute(sa.select(servers.c.status).where(
                servers.c.server_id == event.stream_id.removeprefix("server-"))).scalar()
            if row_status == "overdue":
                values["status"] = "active"
        if values:
            self._update(conn, event, **values)

    def when_server_suspended(self, conn, event):
        self._update(conn, event, status="suspended")

    def when_server_resumed(self, conn, event):
        self._update(conn, event, status="active")


schema.add_projection(ServersProjection())

# Server numbers are "SRV-<n>": by length, then text, is their numeric order (SRV-99999
# before SRV-100000).
NUMBER_ORDER = (sa.func.length(servers.c.number), servers.c.number)
SORTABLE = {"location": servers.c.location, "status": servers.c.status,
            "paid_until": servers.c.paid_until, "tag": servers.c.tag}


def next_number(conn):
    """The next server number (integers, not text: SRV-100000 follows SRV-99999)."""
    last = conn.execute(sa.select(sa.func.max(sa.cast(sa.func.substr(servers.c.number, 5), sa.Integer)))).scalar()
    return f"SRV-{(last or 10000) + 1}"


def _escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(user_id, location=None, status=None, q=None):
    """The WHERE clause of a customer's server list (R-SRV-1/2/3/5)."""
    conditions = [servers.c.user_id == user_id]
    if location:
        conditions.append(servers.c.location == location)
    if status:
        conditions.append(servers.c.status == status)
    if q:
        needle = _escape_like(q.strip().lower())
        by_ip = sa.select(server_ips.c.server_id).where(
            server_ips.c.user_id == user_id, server_ips.c.ip.like(f"{needle}%", escape="\\"))
        conditions.append(sa.or_(
            sa.func.lower(servers.c.number).like(f"%{needle}%", escape="\\"),
            sa.func.lower(servers.c.tag).like(f"%{needle}%", escape="\\"),
            servers.c.server_id.in_(by_ip),
        ))
    return sa.and_(*conditions)


def list_rows(conn, where, sort="number", descending=False, limit=50, offset=0):
    numbers = [c.desc() if descending and sort == "number" else c.asc() for c in NUMBER_ORDER]
    order = numbers if sort == "number" else [SORTABLE[sort].desc() if descending else SORTABLE[sort].asc(), *numbers]
    total = conn.execute(sa.select(sa.func.count()).select_from(servers).where(where)).scalar_one()
    rows = conn.execute(sa.select(servers).where(where).order_by(*order).limit(limit).offset(offset)).mappings().all()
    return rows, total


def rows_after(conn, where, after_number, limit):
    """Keyset page by number (exports: constant cost per page, however deep)."""
    query = sa.select(servers).where(where)
    if after_number:
        length = sa.func.length(servers.c.number)
        query = query.where(sa.or_(length > len(after_number),
                                   sa.and_(length == len(after_number), servers.c.number > after_number)))
    return conn.execute(query.order_by(*NUMBER_ORDER).limit(limit)).mappings().all()
