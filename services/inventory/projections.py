"""Schema, read models and queries of the inventory service.

``servers`` holds one row per server with what lists, filters and exports need; its
addresses are also in ``server_ips`` so a search by IP is an index look-up. Every query
filters on the customer first (indexes lead with ``user_id``), so one customer's 10,000
servers never cost a scan of anyone else's — nor of their own (issue 21):

- a search (``q``) is a prefix match on the number, the tag (case-insensitive: ``tag_key``)
  or an address (normalised: IPv6 compressed, lower case), each an index range scan, the
  three unioned; ``SRV-2050`` finds SRV-20501…, ``10.0.19.`` the addresses of that /24;
- sorts follow indexes that end with ``number_seq`` (the number as an integer), so a page
  of any sort, filtered or not, reads only its own rows; ``cursor`` pages (keyset) cost the
  same however deep, ``page`` pages skip through the index;
- the totals of unsearched lists come from ``server_counts`` (per customer, location and
  status, kept by the projection), not from counting the fleet at every request.

Range scans compare in code-point order: the text columns they use are ``COLLATE "C"`` on
PostgreSQL (SQLite compares bytes anyway).
"""

import functools
import ipaddress
import sys
from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.schema import JSON
from common.paging import keyset_cursor, keyset_values
from common.service_schema import ServiceSchema

schema = ServiceSchema("inventory", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

def code_point_text(length):
    """A text column compared in code-point order on every database (prefix ranges)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


servers = sa.Table(
    "servers", metadata,
    sa.Column("server_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("number", code_point_text(32), nullable=False, unique=True),
    sa.Column("number_seq", sa.Integer, nullable=False),
    sa.Column("tag", sa.String(64), nullable=True),
    sa.Column("tag_key", code_point_text(64), nullable=False, server_default=""),
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
    sa.Index("ix_servers_user_seq", "user_id", "number_seq"),
    sa.Index("ix_servers_user_location_seq", "user_id", "location", "number_seq"),
    sa.Index("ix_servers_user_status_seq", "user_id", "status", "number_seq"),
    sa.Index("ix_servers_user_tag_seq", "user_id", "tag_key", "number_seq"),
    sa.Index("ix_servers_user_paid_seq", "user_id", "paid_until", "number_seq"),
)

server_ips = sa.Table(
    "server_ips", metadata,
    sa.Column("server_id", sa.String(64), primary_key=True),
    sa.Column("ip", code_point_text(45), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Index("ix_server_ips_user_ip", "user_id", "ip"),
)

server_counts = sa.Table(
    "server_counts", metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("location", sa.String(8), primary_key=True),
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("servers", sa.Integer, nullable=False),
)


def number_seq_of(number):
    """``SRV-20501`` → 20501 (the numeric order of server numbers)."""
    return int(str(number).rsplit("-", 1)[-1])


def address_key(ip):
    """An address as it is stored and searched: IPv6 compressed, lower case."""
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        return ip.strip().lower()


def tag_key_of(tag):
    return (tag or "").strip().lower()


def count_change(conn, user_id, location, status, delta):
    """Move the customer's count of servers in (location, status) by ``delta``."""
    key = (server_counts.c.user_id == user_id) & (server_counts.c.location == location) & \
        (server_counts.c.status == status)
    if conn.execute(server_counts.update().where(key).values(servers=server_counts.c.servers + delta)).rowcount == 0:
        conn.execute(server_counts.insert().values(user_id=user_id, location=location, status=status, servers=delta))


class ServersProjection(Projection):
    tables = (servers, server_ips, server_counts)

    def _update(self, conn, event, **values):
        server_id = event.stream_id.removeprefix("server-")
        if "status" in values:
            row = conn.execute(sa.select(servers.c.user_id, servers.c.location, servers.c.status)
                               .where(servers.c.server_id == server_id)).first()
            if row is not None and row.status != values["status"]:
                count_change(conn, row.user_id, row.location, row.status, -1)
                count_change(conn, row.user_id, row.location, values["status"], 1)
        conn.execute(servers.update().where(servers.c.server_id == server_id).values(**values))

    def when_server_provisioned(self, conn, event):
        data = event.data
        conn.execute(servers.insert().values(
            server_id=data["server_id"], user_id=data["user_id"], number=data["number"],
            number_seq=number_seq_of(data["number"]), tag=data.get("tag"), tag_key=tag_key_of(data.get("tag")),
            location=data["location"], status="active", power=data["power"], plan=data["plan"], os=data["os"],
            paid_until=data["paid_until"], price_month=str(data["price_month"]), hardware=data["hardware"],
            ips=data["ips"], bmc=data["bmc"], primary_ip=(data["ips"] or [None])[0],
            created_at=event.recorded_at.isoformat(),
        ))
        for ip in {address_key(ip) for ip in data["ips"]}:
            conn.execute(server_ips.insert().values(server_id=data["server_id"], ip=ip, user_id=data["user_id"]))
        count_change(conn, data["user_id"], data["location"], "active", 1)

    def when_server_tagged(self, conn, event):
        self._update(conn, event, tag=event.data["tag"], tag_key=tag_key_of(event.data["tag"]))

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

SORTABLE = {"number": None, "location": servers.c.location, "status": servers.c.status,
            "paid_until": servers.c.paid_until, "tag": servers.c.tag_key}

# What a list row shows and its cursor needs: a page reads no hardware, BMC binding or
# address JSON it would only throw away (decoding them was a tenth of a page's cost).
LIST_COLUMNS = tuple(servers.c[name] for name in (
    "server_id", "number", "number_seq", "tag", "tag_key", "primary_ip", "location", "status", "power", "plan",
    "paid_until"))
EXPORT_COLUMNS = LIST_COLUMNS + (servers.c.os, servers.c.ips, servers.c.price_month)


def server_of(conn, user_id, server_id):
    """The customer's server (every column), None when there is no such server of theirs."""
    return conn.execute(sa.select(servers).where(
        servers.c.server_id == server_id, servers.c.user_id == user_id)).mappings().first()


def next_number(conn):
    """The next server number (integers, not text: SRV-100000 follows SRV-99999)."""
    last = conn.execute(sa.select(sa.func.max(servers.c.number_seq))).scalar()
    return f"SRV-{(last or 10000) + 1}"


# -- the list's queries ------------------------------------------------------------------------
#
# Every query of the list is one of a few hundred shapes (which filters, search bounds, sort,
# keyset or offset): each shape is built once, with every value a bound parameter, so a
# request only binds its values. Building a union of three range scans with SQLAlchemy and
# hashing it for the compiled-statement cache cost more than the database's own work
# (about half of a search's 0.9 ms on 20,000 servers).

SEARCHED_COLUMNS = ("number", "tag", "ip")  # the prefix ranges of a search, in this order
SELECTED = {"list": LIST_COLUMNS, "export": EXPORT_COLUMNS, "ids": (servers.c.server_id,),
            "count": (sa.func.count(),)}


def prefix_bounds(prefix):
    """``(low, high)`` of the values that start with ``prefix`` in code-point order; ``high``
    is None when nothing sorts after the prefix's last character (no upper bound)."""
    if ord(prefix[-1]) == sys.maxunicode:
        return prefix, None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def search_terms(q):
    """A search's bound values (``number_low``, ``number_high``, ``tag_low`` …) and its shape
    (per searched column, whether it has an upper bound); ``({}, None)`` for no search."""
    needle = (q or "").strip()
    if not needle:
        return {}, None
    number = needle.upper()
    if number.isdigit():
        number = f"SRV-{number}"
    values, shape = {}, []
    for name, prefix in zip(SEARCHED_COLUMNS, (number, tag_key_of(needle), address_key(needle))):
        values[f"{name}_low"], values[f"{name}_high"] = prefix_bounds(prefix)
        shape.append(values[f"{name}_high"] is not None)
    return values, tuple(shape)


def prefix_range(column, name, bounded):
    """``column`` starts with the search's prefix (bound parameters ``<name>_low``/``_high``):
    a range an index serves."""
    low = column >= sa.bindparam(f"{name}_low")
    return sa.and_(low, column < sa.bindparam(f"{name}_high")) if bounded else low


def search_matches(search):
    """The ids of the customer's servers whose number, tag or an address starts with the
    search (R-SRV-5): three index range scans, unioned."""
    user_id = sa.bindparam("user_id")
    number, tag, ip = (prefix_range(column, name, bounded) for column, name, bounded in zip(
        (servers.c.number, servers.c.tag_key, server_ips.c.ip), SEARCHED_COLUMNS, search))
    return sa.union(
        sa.select(servers.c.server_id).where(servers.c.user_id == user_id, number),
        sa.select(servers.c.server_id).where(servers.c.user_id == user_id, tag),
        sa.select(server_ips.c.server_id).where(server_ips.c.user_id == user_id, ip),
    )


def customer_servers(selected, search, location, status):
    """SELECT ``selected`` (a key of ``SELECTED``) of the customer's servers with these
    filters (R-SRV-1/2/3/5). A search starts from its matches (joined to ``servers`` by id):
    the database reads the few servers found, never walks the customer's whole fleet in
    number order looking for them."""
    query = sa.select(*SELECTED[selected])
    if search is not None:
        matches = search_matches(search).subquery("matches")
        query = query.select_from(matches.join(servers, servers.c.server_id == matches.c.server_id))
    else:
        query = query.where(servers.c.user_id == sa.bindparam("user_id"))
    if location:
        query = query.where(servers.c.location == sa.bindparam("location"))
    if status:
        query = query.where(servers.c.status == sa.bindparam("status"))
    return query


def sort_columns(sort, descending):
    """The ORDER BY of a sort: its column (if any), then the number, both one way."""
    columns = [c for c in (SORTABLE[sort], servers.c.number_seq) if c is not None]
    return [c.desc() if descending else c.asc() for c in columns]


def after_position(sort, descending):
    """Rows strictly after the bound position (``after_key``, ``after_seq``) in ``sort``
    order: a keyset condition."""
    seq, after_seq = servers.c.number_seq, sa.bindparam("after_seq")
    column = SORTABLE[sort]
    if column is None:
        return seq < after_seq if descending else seq > after_seq
    after_key = sa.bindparam("after_key")
    if descending:
        return sa.or_(column < after_key, sa.and_(column == after_key, seq < after_seq))
    return sa.or_(column > after_key, sa.and_(column == after_key, seq > after_seq))


@functools.lru_cache(maxsize=1024)
def page_statement(selected, search, location, status, sort, descending, after=False, skip=False):
    """The statement of one page shape: ``limit`` rows in ``sort`` order, after the bound
    position (``after``) or past ``offset`` rows (``skip``). Built once per shape."""
    query = customer_servers(selected, search, location, status)
    if after:
        query = query.where(after_position(sort, descending))
    query = query.order_by(*sort_columns(sort, descending)).limit(sa.bindparam("limit", type_=sa.Integer))
    if skip:
        query = query.offset(sa.bindparam("offset", type_=sa.Integer))
    return query


@functools.lru_cache(maxsize=64)
def count_statement(search, location, status):
    """How many of the customer's servers match a search with these filters."""
    return customer_servers("count", search, location, status)


@functools.lru_cache(maxsize=4)
def counted_statement(location, status):
    """How many servers the customer has with these filters, from ``server_counts``."""
    query = sa.select(sa.func.coalesce(sa.func.sum(server_counts.c.servers), 0)).where(
        server_counts.c.user_id == sa.bindparam("user_id"))
    if location:
        query = query.where(server_counts.c.location == sa.bindparam("location"))
    if status:
        query = query.where(server_counts.c.status == sa.bindparam("status"))
    return query


READ_BY_IDS = sa.select(*LIST_COLUMNS).where(servers.c.server_id.in_(sa.bindparam("ids", expanding=True)))


def counted(conn, user_id, location=None, status=None):
    """How many servers the customer has with these filters (``server_counts``)."""
    return conn.execute(counted_statement(bool(location), bool(status)),
                        {"user_id": user_id, "location": location, "status": status}).scalar_one()


def encode_cursor(row, sort):
    """An opaque position after ``row`` in ``sort`` order (the list's ``next_cursor``)."""
    key = [row[SORTABLE[sort].name]] if SORTABLE[sort] is not None else []
    return keyset_cursor(sort, *key, row["number_seq"])


def decode_cursor(cursor, sort):
    """The position a cursor names; ``ValueError`` for one not made by ``encode_cursor`` for ``sort``."""
    made_for, *key = keyset_values(cursor) or [None]
    expected = 2 if SORTABLE[sort] is not None else 1
    if made_for != sort or len(key) != expected or not isinstance(key[-1], int) or \
            (expected == 2 and not isinstance(key[0], str)):
        raise ValueError("not a cursor of this list (sort, order and filters must stay the same)")
    return key


def list_rows(conn, user_id, location=None, status=None, q=None, sort="number", descending=False, limit=50,
              offset=0, cursor=None):
    """A page of the customer's servers and the total: ``(rows, total, next_cursor)``.
    ``cursor`` (keyset) or ``offset``; the total of an unsearched list from ``server_counts``,
    of a search from its matches — not even counted when the first page holds them all (a
    search usually finds one server: one query, not two)."""
    values, search = search_terms(q)
    values.update(user_id=user_id, location=location, status=status, limit=limit + 1, offset=offset)
    filters = (bool(location), bool(status))  # which filters the statement's shape has
    total = None if search is not None else counted(conn, user_id, location, status)
    if cursor is not None or not offset:
        if cursor is not None:
            *key, values["after_seq"] = decode_cursor(cursor, sort)
            values["after_key"] = key[0] if key else None
        query = page_statement("list", search, *filters, sort, descending, after=cursor is not None)
        rows = conn.execute(query, values).mappings().all()
    else:
        # Skip through the index only, then read just the page's rows (in that order): a
        # deep page reads its own rows, not every row before it.
        ids = conn.execute(page_statement("ids", search, *filters, sort, descending, skip=True),
                           values).scalars().all()
        found = {row["server_id"]: row for row in conn.execute(READ_BY_IDS, {"ids": ids}).mappings().all()}
        rows = [found[server_id] for server_id in ids if server_id in found]
    more = len(rows) > limit  # one row more than the page was read to know
    rows = rows[:limit]
    if total is None:
        if cursor is None and not offset and not more:
            total = len(rows)  # the first page is every match
        else:
            total = conn.execute(count_statement(search, *filters), values).scalar_one()
    return rows, total, encode_cursor(rows[-1], sort) if more else None


def rows_after(conn, user_id, location, status, q, after_number, limit):
    """Keyset page by number (exports: constant cost per page, however deep)."""
    values, search = search_terms(q)
    values.update(user_id=user_id, location=location, status=status, limit=limit,
                  after_seq=number_seq_of(after_number) if after_number else None)
    query = page_statement("export", search, bool(location), bool(status), "number", False,
                           after=bool(after_number))
    return conn.execute(query, values).mappings().all()
