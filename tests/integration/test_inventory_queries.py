"""The server list's queries on a migrated database, SQLite and PostgreSQL (issue 21):
prefix search by number, tag and address, keyset (cursor) pages that agree with offset
pages, totals kept by the projection — and the database's own plan of every query the
list sends, which must reach the customer's rows through an index, never by scanning the
fleet or sorting it."""

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from common.db import create_engine
from common.eventstore import NewEvent
from deploy.components import migrate
from services.inventory.projections import list_rows, schema

FLEET = 120  # ann's servers; bob has a few that must never show


def provisioned(number, user_id, location, tag, ips):
    return NewEvent("server_provisioned", {
        "server_id": f"s-{number}", "user_id": user_id, "number": f"SRV-{number}", "tag": tag, "location": location,
        "power": "on", "plan": "AX41", "os": "debian-12", "paid_until": "2030-01-01", "price_month": "49.00",
        "hardware": {}, "ips": ips, "bmc": {}})


@pytest.fixture
def inventory(database_url):
    engine = create_engine(database_url)
    migrate("inventory", engine)
    store = schema.create_store(engine)
    for n in range(FLEET):
        number = 20_490 + n  # SRV-20490 … SRV-20609
        location = ("NL", "US", "DE", "SG")[n % 4]
        ips = [f"10.0.{n // 50}.{n % 50 + 1}"] + ([f"2001:DB8:0:0::{n:x}"] if n % 4 == 0 else [])
        store.append(f"server-s-{number}", 0, [provisioned(number, "ann", location, f"Web-{n}", ips)])
        if n % 10 == 0:
            store.append(f"server-s-{number}", 1, [NewEvent("server_marked_overdue", {})])
    for n in range(5):
        store.append(f"server-s-{30_000 + n}", 0, [provisioned(30_000 + n, "bob", "NL", f"web-{n}", [f"10.0.0.{n + 1}"])])
    return engine


def listed(engine, **kwargs):
    with engine.connect() as conn:
        rows, total, cursor = list_rows(conn, "ann", **kwargs)
    return [row["number"] for row in rows], total, cursor


@pytest.mark.parametrize("q, expected", [
    ("SRV-2050", [f"SRV-{n}" for n in range(20_500, 20_510)]),  # a number's start
    ("20609", ["SRV-20609"]),                                     # digits only
    ("web-11", ["SRV-20501"] + [f"SRV-{20_490 + n}" for n in range(110, 120)]),  # tag, any case
    ("WEB-119", ["SRV-20609"]),
    ("10.0.2.", [f"SRV-{20_490 + n}" for n in range(100, 120)]),  # the addresses of a /24
    ("2001:db8::1c", ["SRV-20518"]),                              # IPv6 in another form
    ("2001:0db8:0000:0000:0000:0000:0000:001c", ["SRV-20518"]),
    ("nothing", []),
])
def test_search_is_a_prefix_of_a_number_tag_or_address_of_the_customers_own(inventory, q, expected):
    numbers, total, _ = listed(inventory, q=q, limit=500)
    assert numbers == sorted(expected, key=lambda number: int(number[4:])) and total == len(expected)


@pytest.mark.parametrize("limit", [3, 10, 19, 20, 21])
def test_a_search_counts_every_match_on_every_page_however_many_fit(inventory, limit):
    """The total is every match whether the first page holds them all (then it is not
    counted again) or they run over several pages, by cursor or by offset."""
    matches = [f"SRV-{20_490 + n}" for n in range(100, 120)]  # "10.0.2.": 20 servers
    walked, cursor, page = [], None, 0
    while True:
        numbers, total, cursor = listed(inventory, q="10.0.2.", limit=limit, cursor=cursor)
        assert total == len(matches), (limit, page)
        walked += numbers
        page += 1
        if cursor is None:
            break
    assert walked == matches
    numbers, total, _ = listed(inventory, q="10.0.2.", limit=limit, offset=limit)
    assert numbers == matches[limit:2 * limit] and total == len(matches)


def test_cursor_pages_walk_the_same_rows_as_offset_pages_in_every_sort(inventory):
    for sort in ("number", "location", "status", "paid_until", "tag"):
        for descending in (False, True):
            by_offset = []
            for page in range(7):
                numbers, total, _ = listed(inventory, sort=sort, descending=descending, limit=20, offset=page * 20)
                by_offset += numbers
            by_cursor, cursor = [], None
            while True:
                numbers, total, cursor = listed(inventory, sort=sort, descending=descending, limit=20, cursor=cursor)
                by_cursor += numbers
                if cursor is None:
                    break
            assert total == FLEET and by_cursor == by_offset and len(set(by_cursor)) == FLEET, (sort, descending)


def test_totals_follow_filters_and_status_changes(inventory):
    assert listed(inventory, limit=1)[1] == FLEET
    assert listed(inventory, location="NL", limit=1)[1] == FLEET // 4
    assert listed(inventory, status="overdue", limit=1)[1] == FLEET // 10
    assert listed(inventory, location="NL", status="overdue", limit=1)[1] == 6  # n = 0, 20, 40 … 100
    store = schema.create_store(inventory)
    store.append("server-s-20490", 2, [NewEvent("server_paid", {"paid_until": "2031-01-01", "status": "active"})])
    assert listed(inventory, status="overdue", limit=1)[1] == FLEET // 10 - 1
    assert listed(inventory, status="active", limit=1)[1] == FLEET - FLEET // 10 + 1


def test_a_foreign_or_changed_cursor_is_refused(inventory):
    _, _, cursor = listed(inventory, sort="tag", limit=10)
    with pytest.raises(ValueError):
        listed(inventory, sort="number", limit=10, cursor=cursor)
    with pytest.raises(ValueError):
        listed(inventory, limit=10, cursor="bm90IGEgY3Vyc29y")


QUERIES = [
    {}, {"location": "NL"}, {"status": "overdue"}, {"location": "NL", "status": "overdue"},
    {"offset": 100}, {"sort": "tag", "descending": True}, {"sort": "location"}, {"sort": "paid_until"},
    {"sort": "status", "descending": True}, {"q": "web-1"}, {"q": "10.0.1.7"}, {"q": "SRV-2050"},
    {"cursor": "from the first page"},
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: ",".join(f"{k}={v}" for k, v in query.items()) or "all")
def test_every_list_query_reaches_its_rows_through_an_index(inventory, query):
    query = dict(query)
    if query.get("cursor"):
        query["cursor"] = listed(inventory, limit=50)[2]
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(inventory, "before_cursor_execute", record)
    try:
        listed(inventory, limit=50, **query)
    finally:
        event.remove(inventory, "before_cursor_execute", record)
    assert statements
    for statement, parameters in statements:
        plan = query_plan(inventory, statement, parameters)
        if inventory.dialect.name == "sqlite":
            assert not [line for line in plan if line.startswith("SCAN") and "server" in line], plan
            if "q" not in query:  # a search sorts its few matches; nothing else sorts
                assert not [line for line in plan if "TEMP B-TREE" in line], plan
            else:  # a search starts from its matches: no walk of the fleet in number order
                assert not [line for line in plan if line.endswith("(user_id=?)")], plan
        else:
            assert not [line for line in plan if "Seq Scan" in line and "server" in line], plan
            if "q" not in query:
                assert not [line for line in plan if line.lstrip("-> ").startswith("Sort ")], plan
            else:
                assert not [line for line in plan if "ix_servers_user_seq" in line], plan


def query_plan(engine, statement, parameters):
    """The database's plan of one statement, one line per step."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return [row[-1] for row in rows]
        conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: make it show the index path
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        return [row[0].strip() for row in rows]
