"""The event store's contract, run once on SQLite and once on PostgreSQL (``database_url``).

What every service relies on: optimistic concurrency on (stream, version), projections in
the append's transaction, rebuilds equal to the live read models, the inbox, and a log
read back in commit order.
"""

from dataclasses import dataclass

import eventlet
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common import context
from common.db import create_engine
from common.errors import ConcurrencyConflict
from common.eventstore import ANY_VERSION, Aggregate, NewEvent
from tests.support import balance_of, credited, debited, make_schema, make_store


def test_append_then_load_returns_events_in_version_order(database_url):
    store, _ = make_store(database_url)
    store.append("acc-1", 0, [credited(50), debited(20)])
    store.append("acc-1", 2, [credited(5)])

    events = store.load_stream("acc-1")

    assert [(e.version, e.type, e.data["amount"]) for e in events] == [
        (1, "credited", 50), (2, "debited", 20), (3, "credited", 5),
    ]
    assert len({e.event_id for e in events}) == 3
    assert all(e.recorded_at.tzinfo is not None for e in events)


def test_stale_expected_version_is_a_concurrency_conflict(database_url):
    store, balances = make_store(database_url)
    store.append("acc-1", 0, [credited(50)])

    with pytest.raises(ConcurrencyConflict) as raised:
        store.append("acc-1", 0, [credited(7)])

    assert raised.value.code == "conflict"
    assert [e.version for e in store.load_stream("acc-1")] == [1]
    assert balance_of(store, balances, "acc-1") == 50


def test_two_writers_racing_at_the_same_version_one_wins_the_other_conflicts(database_url):
    """Two processes (two engines) read version 1, then both append at version 1."""
    first, balances = make_store(database_url)
    first.append("acc-1", 0, [credited(100)])
    schema, _ = make_schema()
    second = schema.create_store(create_engine(database_url))
    both_read = eventlet.event.Event()
    ready = []

    def command(store, amount):
        version = len(store.load_stream("acc-1"))
        ready.append(version)
        if len(ready) == 2:
            both_read.send()
        both_read.wait()
        try:
            store.append("acc-1", version, [debited(amount)])
            return "won"
        except ConcurrencyConflict:
            return "conflict"

    pool = eventlet.GreenPool()
    outcomes = sorted(pool.imap(lambda args: command(*args), [(first, 30), (second, 60)]))

    assert outcomes == ["conflict", "won"]
    assert ready == [1, 1]
    assert len(first.load_stream("acc-1")) == 2
    assert balance_of(first, balances, "acc-1") in (70, 40)


def test_the_database_itself_refuses_a_second_event_at_the_same_version(database_url):
    store, _ = make_store(database_url)
    store.append("acc-1", 0, [credited(1)])
    row = {"stream_id": "acc-1", "version": 1, "type": "credited", "data": {}, "metadata": {},
           "recorded_at": sa.func.now()}
    with pytest.raises(IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(store.tables.events.insert().values(**row))


def test_any_version_appends_after_the_current_end(database_url):
    store, _ = make_store(database_url)
    store.append("acc-1", 0, [credited(1)])
    recorded = store.append("acc-1", ANY_VERSION, [credited(2)])
    assert recorded[0].version == 2


def test_projection_is_updated_in_the_same_transaction_as_the_append(database_url):
    store, balances = make_store(database_url)
    store.append("acc-1", 0, [credited(50), debited(20)])
    assert balance_of(store, balances, "acc-1") == 30

    with pytest.raises(RuntimeError):
        store.append("acc-1", 2, [credited(10), credited(5, explode=True)])

    # The failing projection rolled the whole append back: no event, no balance change.
    assert [e.version for e in store.load_stream("acc-1")] == [1, 2]
    assert balance_of(store, balances, "acc-1") == 30


def test_a_failed_transaction_appends_nothing(database_url):
    store, _ = make_store(database_url)
    with pytest.raises(ValueError):
        with store.transaction() as tx:
            tx.append("acc-1", 0, [credited(1)])
            raise ValueError("the command failed after appending")
    assert store.load_stream("acc-1") == []
    assert store.last_position() == 0


def test_read_after_returns_the_log_in_position_order_optionally_filtered(database_url):
    store, _ = make_store(database_url)
    store.append("a", 0, [credited(1)])
    store.append("b", 0, [credited(2), debited(1)])
    store.append("a", 1, [debited(1)])

    everything = store.read_after(0)
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    assert [(e.stream_id, e.type) for e in everything] == [
        ("a", "credited"), ("b", "credited"), ("b", "debited"), ("a", "debited"),
    ]
    assert [e.stream_id for e in store.read_after(everything[1].position)] == ["b", "a"]
    assert [e.stream_id for e in store.read_after(0, types={"debited"})] == ["b", "a"]
    assert store.last_position() == everything[-1].position


def test_read_runs_a_query_function_on_a_connection_of_its_own_and_gives_back_its_answer(database_url):
    """``store.read(query, *args)`` is ``query(conn, *args)`` on a fresh connection, closed
    (back in the pool) afterwards, whatever the query returned or raised."""
    store, balances = make_store(database_url)
    store.append("acc-1", 0, [credited(50), debited(20)])
    store.append("acc-2", 0, [credited(7)])
    connections = []

    def balances_of(conn, *account_ids):
        connections.append(conn)
        assert store.engine.pool.checkedout() == 1
        table = balances.table
        return dict(conn.execute(sa.select(table.c.account_id, table.c.balance)
                                 .where(table.c.account_id.in_(account_ids))).all())

    def failing(conn):
        connections.append(conn)
        raise LookupError("the query failed")

    assert store.read(balances_of, "acc-1", "acc-2") == {"acc-1": 30, "acc-2": 7}
    assert store.read(balances_of, "acc-3") == {}
    with pytest.raises(LookupError, match="the query failed"):
        store.read(failing)

    assert len({id(conn) for conn in connections}) == 3
    assert all(conn.closed for conn in connections)
    assert store.engine.pool.checkedout() == 0


def test_event_metadata_carries_the_call_context(database_url):
    store, _ = make_store(database_url)
    token = context.bind({"user_id": "u-1", "correlation_id": "corr-1", "request_id": "req-1"})
    try:
        [event] = store.append("acc-1", 0, [credited(1)], metadata={"causation_id": "cause-1"})
    finally:
        context.unbind(token)
    stored = store.load_stream("acc-1")[0].metadata
    assert stored == event.metadata
    assert stored["user_id"] == "u-1"
    assert stored["correlation_id"] == "corr-1"
    assert stored["request_id"] == "req-1"
    assert stored["causation_id"] == "cause-1"
    assert len(stored["event_id"]) == 32


def test_rebuilt_projection_equals_the_live_one(database_url):
    store, balances = make_store(database_url)
    for index in range(30):
        account = f"acc-{index % 4}"
        version = len(store.load_stream(account))
        store.append(account, version, [credited(index + 10), debited(index % 3)])
    live = store.snapshot_projections()
    assert len(live["balances"]) == 4

    replayed, rebuilt = store.rebuild_projections(batch=7)

    assert replayed == 60
    assert rebuilt == live
    assert store.snapshot_projections() == live


def test_rebuild_repairs_a_damaged_read_model(database_url):
    store, balances = make_store(database_url)
    store.append("acc-1", 0, [credited(50)])
    live = store.snapshot_projections()
    with store.engine.begin() as conn:
        conn.execute(balances.table.update().values(balance=999))
    assert store.snapshot_projections() != live

    store.rebuild_projections()

    assert store.snapshot_projections() == live


def test_dry_run_rebuild_changes_nothing(database_url):
    store, balances = make_store(database_url)
    store.append("acc-1", 0, [credited(50)])
    with store.engine.begin() as conn:
        conn.execute(balances.table.update().values(balance=999))
    damaged = store.snapshot_projections()

    _, rebuilt = store.rebuild_projections(dry_run=True)

    assert rebuilt != damaged
    assert store.snapshot_projections() == damaged


def test_inbox_records_an_event_once_per_consumer(database_url):
    store, _ = make_store(database_url)
    with store.transaction() as tx:
        assert tx.record_inbox("notify.on_thing", "evt-1") is True
    with store.transaction() as tx:
        assert tx.record_inbox("notify.on_thing", "evt-1") is False
        assert tx.record_inbox("billing.on_thing", "evt-1") is True


def test_inbox_and_effects_commit_or_roll_back_together(database_url):
    store, balances = make_store(database_url)
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.record_inbox("c", "evt-1")
            tx.append("acc-1", 0, [credited(5)])
            raise RuntimeError("crash before commit")
    # Nothing was recorded, so the redelivered event is processed in full.
    with store.transaction() as tx:
        assert tx.record_inbox("c", "evt-1") is True
        tx.append("acc-1", 0, [credited(5)])
    assert balance_of(store, balances, "acc-1") == 5


def test_commit_listeners_hear_only_committed_appends(database_url):
    store, _ = make_store(database_url)
    heard = []
    store.on_commit(lambda events: heard.append([e.type for e in events]))
    store.append("acc-1", 0, [credited(1), debited(1)])
    with pytest.raises(ConcurrencyConflict):
        store.append("acc-1", 0, [credited(1)])
    assert heard == [["credited", "debited"]]


def test_concurrent_writers_in_one_process_all_land(database_url):
    """Many greenthreads appending to different streams: every event lands, positions are
    unique and the log order matches each stream's version order."""
    store, balances = make_store(database_url)

    def writer(index):
        for step in range(10):
            store.append(f"acc-{index}", step, [NewEvent("credited", {"amount": 1})])

    pool = eventlet.GreenPool()
    list(pool.imap(writer, range(8)))

    events = store.read_after(0, limit=None)
    assert len(events) == 80
    assert len({e.position for e in events}) == 80
    for index in range(8):
        assert balance_of(store, balances, f"acc-{index}") == 10


def test_waiting_for_another_processs_sqlite_write_lock_does_not_stall_other_greenthreads(sqlite_url):
    """A second process (a replica, `panel rebuild-projections`) holds the write lock for a
    second: the append waits for it cooperatively, so the rest of the service keeps running."""
    import subprocess
    import sys

    store, balances = make_store(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(1.0); c.execute('COMMIT')\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    ticks = []

    def ticker():
        while True:
            ticks.append(1)
            eventlet.sleep(0.01)

    other_work = eventlet.spawn(ticker)
    try:
        store.append("acc-1", 0, [credited(5)])
    finally:
        other_work.kill()
        holder.wait(10)
    assert balance_of(store, balances, "acc-1") == 5
    assert holder.returncode == 0  # the holder committed: the append really waited for it
    assert len(ticks) >= 20  # other greenthreads ran while the append waited


@dataclass
class Wallet(Aggregate):
    """An aggregate of the test's own: its stream is ``wallet-<id>``."""

    stream_prefix = "wallet"

    wallet_id: str
    version: int = 0
    balance: int = 0

    def _on_credited(self, data):
        self.balance += data["amount"]


def test_the_repository_reads_and_saves_aggregates_on_the_streams_their_class_names(database_url):
    store, _ = make_store(database_url)
    store.create(Wallet, "w-1", [credited(50)])
    with store.transaction() as tx:
        wallet = tx.get(Wallet, "w-1")
        tx.save(wallet, [credited(5)])

    assert [e.data["amount"] for e in store.load_stream("wallet-w-1")] == [50, 5]
    assert store.get(Wallet, "w-1").balance == 55 and store.get(Wallet, "w-1").version == 2
    assert not store.get(Wallet, "w-2").exists
    with pytest.raises(ConcurrencyConflict):
        store.save(wallet, [credited(1)])  # read at version 1, the stream is at 2 now
    with pytest.raises(ConcurrencyConflict):
        store.create(Wallet, "w-1", [credited(1)])  # it exists
    assert store.get(Wallet, "w-1").balance == 55
