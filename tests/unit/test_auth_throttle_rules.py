"""Throttle, TOTP and reset rules of the auth domain (no I/O), and which client address
the gateway takes from X-Forwarded-For."""

from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import RateLimited, Unauthenticated
from common.eventstore import RecordedEvent
from gateway.sessions import client_ip_of, trusted_proxy_count
from services.auth import domain
from services.auth.domain import Challenge, Throttle, User

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
BASE = 10


def recorded(stream_id, new_events):
    return [RecordedEvent(position=i, stream_id=stream_id, version=i, type=e.type, data=e.data,
                          metadata={"event_id": str(i)}, recorded_at=NOW)
            for i, e in enumerate(new_events, start=1)]


def replayed(key, events):
    return Throttle.replay(key, recorded(f"throttle-{key}", events))


def failed(key, failures, at=NOW):
    events = []
    for n in range(failures):
        events += replayed(key, events).count(f"a{n}", at)
    return events


# -- throttles -----------------------------------------------------------------------------

def test_second_factor_failures_delay_from_the_fifth_and_lock_at_twenty():
    key = domain.second_factor_key("u1")
    assert replayed(key, failed(key, 4)).retry_after(NOW, BASE) == 0
    assert replayed(key, failed(key, 5)).retry_after(NOW, BASE) == BASE
    locked = replayed(key, failed(key, domain.SECOND_FACTOR_LOCK_AT))
    assert locked.retry_after(NOW + timedelta(days=7), BASE) is None
    with pytest.raises(RateLimited) as raised:
        domain.count_attempt([locked], "next", NOW + timedelta(days=7), BASE)
    assert "Reset your password" in raised.value.message
    cleared = failed(key, domain.SECOND_FACTOR_LOCK_AT) + locked.clear("password_reset", NOW)
    assert replayed(key, cleared).retry_after(NOW, BASE) == 0


def test_an_account_name_only_ever_waits_at_most_the_capped_delay():
    key = domain.account_key("Ann")
    throttle = replayed(key, failed(key, 500))
    assert throttle.retry_after(NOW, BASE) == domain.THROTTLE_MAX_DELAY.total_seconds()
    assert throttle.retry_after(NOW + domain.THROTTLE_MAX_DELAY, BASE) == 0


def test_an_attempt_is_counted_before_it_is_checked_so_a_concurrent_one_waits():
    key = domain.account_key("ann")
    history = failed(key, 4)
    [events] = domain.count_attempt([replayed(key, history)], "fifth", NOW, BASE)
    assert [e.type for e in events] == ["login_attempt_counted"]
    with pytest.raises(RateLimited) as raised:  # the next one sees the fifth, still unchecked
        domain.count_attempt([replayed(key, history + events)], "sixth", NOW, BASE)
    assert raised.value.retry_after == BASE


def counted(key, history, attempt_id, at):
    """``history`` with one more attempt counted at ``at``, and that attempt."""
    throttle = replayed(key, history)
    return history + throttle.count(attempt_id, at), domain.attempt_of(throttle, attempt_id, at)


def test_forgiving_a_successful_attempt_restores_the_wait_before_it():
    key = domain.account_key("ann")
    later = NOW + timedelta(seconds=BASE)
    history, good = counted(key, failed(key, 5), "good", later)
    history += replayed(key, history).forgive(good, later)
    throttle = replayed(key, history)
    assert throttle.failures == 5 and throttle.last_failure_at == NOW
    assert throttle.retry_after(later, BASE) == 0  # the honest success did not restart the wait
    cleared = history + throttle.clear("support", later)
    assert replayed(key, cleared).forgive(good, later) == []  # nothing left to forgive


def test_forgiving_keeps_the_time_of_a_failure_counted_after_it():
    key = domain.account_key("ann")
    later, latest = NOW + timedelta(seconds=BASE), NOW + timedelta(seconds=BASE + 3)
    history, good = counted(key, failed(key, 5), "good", later)
    history, _ = counted(key, history, "bad", latest)
    history += replayed(key, history).forgive(good, latest)
    throttle = replayed(key, history)
    assert throttle.failures == 6 and throttle.last_failure_at == latest


def test_forgiving_an_attempt_counted_in_a_closed_window_changes_nothing():
    key = domain.address_key("192.0.2.7")
    history, late = counted(key, failed(key, 3), "late", NOW + timedelta(minutes=59))
    history, _ = counted(key, history, "next-hour", NOW + domain.ADDRESS_WINDOW)  # a new window opens
    history += replayed(key, history).forgive(late, NOW + domain.ADDRESS_WINDOW)
    assert replayed(key, history).failures == 1


def test_the_read_model_row_is_the_replayed_state():
    """What the auth service reads on every attempt (one row) equals the stream's fold."""
    key = domain.second_factor_key("u1")
    throttle = replayed(key, failed(key, 7, at=NOW))
    row = {"failures": 7, "last_failure_at": NOW.isoformat(), "window_started_at": None, "version": 7}
    assert Throttle.from_row(key, row) == throttle
    assert Throttle.from_row(key, None) == Throttle(key)


def test_the_longest_wait_is_answered_and_a_lock_comes_first():
    short, long = domain.account_key("ann"), domain.second_factor_key("u1")
    throttles = [replayed(short, failed(short, 5)), replayed(long, failed(long, 7))]
    with pytest.raises(RateLimited) as raised:
        domain.check_attempt_allowed(throttles, NOW, BASE)
    assert raised.value.retry_after == BASE * 4
    throttles.append(replayed(long, failed(long, domain.SECOND_FACTOR_LOCK_AT)))
    with pytest.raises(RateLimited) as raised:
        domain.check_attempt_allowed(throttles, NOW, BASE)
    assert raised.value.retry_after == domain.THROTTLE_LOCK_RETRY_AFTER


def test_throttle_streams_written_before_counting_first_still_count():
    key = domain.account_key("ann")
    old = [domain.NewEvent("login_failed", {"key": key, "consecutive_failures": n, "at": NOW.isoformat()})
           for n in range(1, 6)]
    assert replayed(key, old).failures == 5
    cleared = old + [domain.NewEvent("login_succeeded", {"key": key, "at": NOW.isoformat()})]
    assert replayed(key, cleared).failures == 0


# -- TOTP ----------------------------------------------------------------------------------

def enrolled_user(step):
    history = User.register("u1", "ann", "ann@example.com", "+31612345678", "hash", False)
    history += User.replay("u1", recorded("user-u1", history)).start_totp_enrolment("e1")
    history += User.replay("u1", recorded("user-u1", history)).confirm_totp("e1", step, ["h1"])
    return User.replay("u1", recorded("user-u1", history)), history


def test_the_code_that_confirms_an_authenticator_is_spent():
    user, history = enrolled_user(step=1000)
    assert [e.type for e in history[-2:]] == ["totp_enrolled", "totp_code_used"]
    assert user.unspent_totp_step({999: "111111", 1000: "222222", 1001: "333333"}, "222222") is None
    assert user.unspent_totp_step({999: "111111", 1000: "222222", 1001: "333333"}, "333333") == 1001


def test_totp_codes_are_compared_in_constant_time(monkeypatch):
    compared = []
    real = domain.hmac.compare_digest
    monkeypatch.setattr(domain.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert domain.matching_totp_step({5: "123456"}, "123456") == 5
    assert compared == [(b"123456", b"123456")]


# -- password resets -----------------------------------------------------------------------

def test_a_password_reset_spends_every_other_reset_link():
    history = User.register("u1", "ann", "ann@example.com", "+31612345678", "hash", True)
    for n in range(2):
        history += User.replay("u1", recorded("user-u1", history)).request_password_reset(f"r{n}", f"t{n}", NOW)
    history += User.replay("u1", recorded("user-u1", history)).reset_password("r0", "t0", "new-hash", NOW)
    with pytest.raises(Unauthenticated):
        User.replay("u1", recorded("user-u1", history)).reset_password("r1", "t1", "other-hash", NOW)


def test_a_password_reset_ends_the_challenges_begun_before_it():
    challenge = Challenge.replay("c1", recorded("challenge-c1", Challenge.issue("c1", "u1", NOW)))
    challenge.require_open(NOW + timedelta(minutes=1), password_reset_at=NOW - timedelta(minutes=1))
    with pytest.raises(Unauthenticated):
        challenge.require_open(NOW + timedelta(minutes=1), password_reset_at=NOW + timedelta(seconds=30))


# -- the client address behind proxies ----------------------------------------------------

def request_with(forwarded_for):
    return Request(EnvironBuilder(headers={"X-Forwarded-For": forwarded_for},
                                  environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_environ())


@pytest.mark.parametrize("forwarded_for, proxies, client", [
    ("6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),  # the client wrote 6.6.6.6; our proxy appended the rest
    ("6.6.6.6, 198.51.100.7, 10.0.0.9", 2, "198.51.100.7"),
    ("198.51.100.7", 2, "10.0.0.2"),  # fewer entries than proxies: not from our proxies
    ("6.6.6.6", 0, "10.0.0.2"),  # no proxy trusted
])
def test_the_client_address_is_the_one_our_outermost_proxy_appended(forwarded_for, proxies, client):
    assert client_ip_of(request_with(forwarded_for), proxies) == client


def test_trust_x_forwarded_for_is_a_switch_or_a_number_of_proxies():
    assert [trusted_proxy_count(v) for v in (False, True, "true", "false", 2, "3", None)] == [0, 1, 1, 0, 2, 3, 0]
