"""Times read back from either database are aware UTC, whatever the session's time zone."""

from datetime import datetime, timedelta, timezone

from common.eventstore.store import as_utc


def test_naive_sqlite_times_are_taken_as_utc():
    assert as_utc(datetime(2026, 11, 24, 10, 0)) == datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def test_postgresql_times_in_another_session_time_zone_come_back_in_utc():
    amsterdam = datetime(2026, 11, 24, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    moment = as_utc(amsterdam)
    assert moment.utcoffset() == timedelta(0)
    assert moment.isoformat() == "2026-11-24T10:00:00+00:00"  # projections store and compare this text


def test_nothing_stays_nothing():
    assert as_utc(None) is None
