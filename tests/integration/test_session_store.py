"""The gateway's session table on a migrated database, SQLite and PostgreSQL (R-AUTH-6/7):
a session lives while it is used, ends after the idle time or the absolute lifetime
(its row deleted on sight), and records its use at most once a minute."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from common.db import create_engine
from common.eventstore import as_utc, utcnow
from deploy.components import migrate
from gateway.database import sessions
from gateway.sessions import TOUCH_EVERY, SessionStore


class Clock:
    def __init__(self):
        self.at = utcnow()

    def __call__(self):
        return self.at

    def advance(self, **delta):
        self.at += timedelta(**delta)


@pytest.fixture
def store(database_url):
    engine = create_engine(database_url)
    migrate("gateway", engine)
    clock = Clock()
    yield SessionStore(engine, idle_seconds=1800, absolute_seconds=43200, now=clock), clock
    engine.dispose()


def stored(store, session_id):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sessions).where(sessions.c.session_id == session_id)).mappings().first()


def test_a_used_session_lives_and_records_its_use_once_a_minute(store):
    store, clock = store
    token, _ = store.create("s-1", "ann", "10.0.0.1", "pytest")
    assert store.find(token)["user_id"] == "ann"
    started = as_utc(stored(store, "s-1")["last_seen_at"])

    clock.advance(seconds=30)  # used again within the minute: nothing written
    assert store.find(token)["session_id"] == "s-1"
    assert as_utc(stored(store, "s-1")["last_seen_at"]) == started

    clock.advance(seconds=TOUCH_EVERY.total_seconds())  # later: its use is recorded
    found = store.find(token)
    assert as_utc(found["last_seen_at"]) == clock.at == as_utc(stored(store, "s-1")["last_seen_at"])

    clock.advance(minutes=29)  # idle less than 30 minutes since the recorded use: still alive
    assert store.find(token)["session_id"] == "s-1"


def test_an_idle_session_ends_and_its_row_goes(store):
    store, clock = store
    token, _ = store.create("s-1", "ann")
    clock.advance(minutes=30)
    assert store.find(token) is None
    assert stored(store, "s-1") is None


def test_a_session_in_use_ends_at_its_absolute_lifetime(store):
    store, clock = store
    token, _ = store.create("s-1", "ann")
    for _ in range(12 * 4 - 1):  # used every 15 minutes for almost 12 hours
        clock.advance(minutes=15)
        assert store.find(token) is not None
    clock.advance(minutes=15)
    assert store.find(token) is None
    assert stored(store, "s-1") is None


def test_unknown_and_oversized_tokens_find_nothing(store):
    store, _ = store
    store.create("s-1", "ann")
    assert store.find("not-a-token") is None
    assert store.find("") is None
    assert store.find("x" * 201) is None
