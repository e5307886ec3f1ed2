"""The auth domain without I/O: given events, when a command, then events or an error."""

from datetime import datetime, timedelta, timezone

import pytest

from common.errors import RateLimited, Unauthenticated, ValidationFailed
from common.eventstore import RecordedEvent
from services.auth import domain
from services.auth.domain import Challenge, Throttle, User

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
KEY = "k" * 40


def recorded(stream_id, new_events):
    return [RecordedEvent(position=i, stream_id=stream_id, version=i, type=e.type, data=e.data,
                          metadata={"event_id": str(i)}, recorded_at=NOW)
            for i, e in enumerate(new_events, start=1)]


def challenge_with_code(code="123456", at=NOW):
    history = Challenge.issue("c1", "u1", at)
    challenge = Challenge.replay("c1", recorded("challenge-c1", history))
    history += challenge.send_code(domain.secret_hash(KEY, "code", "c1", code), "sms", "smsa", None, at)
    return history


def replay_challenge(history):
    return Challenge.replay("c1", recorded("challenge-c1", history))


def test_codes_are_six_digits_from_a_csprng():
    codes = {domain.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190


def test_the_right_code_passes_the_challenge():
    challenge = replay_challenge(challenge_with_code())
    events = challenge.verify_code(domain.secret_hash(KEY, "code", "c1", "123456"), NOW + timedelta(minutes=1))
    assert [e.type for e in events] == ["challenge_passed"]


def test_a_code_works_once():
    history = challenge_with_code()
    good = domain.secret_hash(KEY, "code", "c1", "123456")
    history += replay_challenge(history).verify_code(good, NOW)
    with pytest.raises(Unauthenticated) as raised:
        replay_challenge(history).verify_code(good, NOW)
    assert raised.value.code == "invalid_code"


def test_a_code_expires_after_five_minutes():
    challenge = replay_challenge(challenge_with_code())
    events = challenge.verify_code(domain.secret_hash(KEY, "code", "c1", "123456"), NOW + timedelta(minutes=5, seconds=1))
    assert [e.type for e in events] == ["code_rejected"]


def test_the_fifth_wrong_guess_kills_the_challenge():
    history = challenge_with_code()
    wrong = domain.secret_hash(KEY, "code", "c1", "000000")
    for guess in range(1, 6):
        events = replay_challenge(history).verify_code(wrong, NOW)
        assert events[0].data["wrong_guesses"] == guess
        history += events
    assert events[0].data["dead"] is True
    with pytest.raises(Unauthenticated):  # even the right code is refused now
        replay_challenge(history).verify_code(domain.secret_hash(KEY, "code", "c1", "123456"), NOW)


def test_a_resend_replaces_the_code_but_keeps_the_guess_count():
    history = challenge_with_code("111111")
    history += replay_challenge(history).verify_code(domain.secret_hash(KEY, "code", "c1", "000000"), NOW)
    history += replay_challenge(history).send_code(domain.secret_hash(KEY, "code", "c1", "222222"),
                                                   "sms_alt", "smsb", None, NOW)
    challenge = replay_challenge(history)
    assert challenge.wrong_guesses == 1
    assert challenge.last_provider == "smsb"
    assert challenge.verify_code(domain.secret_hash(KEY, "code", "c1", "111111"), NOW)[0].type == "code_rejected"
    assert challenge.verify_code(domain.secret_hash(KEY, "code", "c1", "222222"), NOW)[0].type == "challenge_passed"


def test_at_most_five_codes_per_challenge():
    history = challenge_with_code()
    for _ in range(4):
        history += replay_challenge(history).send_code("h", "voice", "voicecall", "en", NOW)
    with pytest.raises(RateLimited):
        replay_challenge(history).send_code("h", "sms", "smsa", None, NOW)


def test_a_voice_resend_does_not_change_the_sms_provider_to_avoid():
    history = challenge_with_code()
    history += replay_challenge(history).send_code("h", "voice", "voicecall", "fr", NOW)
    assert replay_challenge(history).last_provider == "smsa"


def test_throttle_delays_start_at_the_fifth_failure_and_grow():
    assert [domain.throttle_delay(n, 1).total_seconds() for n in range(1, 9)] == [0, 0, 0, 0, 1, 2, 4, 8]
    assert domain.throttle_delay(60, 1) == domain.THROTTLE_MAX_DELAY


def test_throttle_retry_after_and_reset():
    events = []
    for n in range(5):
        events += Throttle.replay("account:ann", recorded("t", events)).count(f"a{n}", NOW)
    throttle = Throttle.replay("account:ann", recorded("t", events))
    assert throttle.failures == 5
    assert throttle.retry_after(NOW, base_seconds=10) == 10
    assert throttle.retry_after(NOW + timedelta(seconds=10), base_seconds=10) == 0
    events += throttle.clear("login", NOW)
    assert Throttle.replay("account:ann", recorded("t", events)).retry_after(NOW, 10) == 0


def throttle_after_failures(key, failures, at=NOW):
    events = []
    for n in range(failures):
        events += Throttle.replay(key, recorded("t", events)).count(f"a{n}", at)
    return Throttle.replay(key, recorded("t", events))


def test_an_address_waits_only_after_a_burst_and_only_until_its_hour_is_over_and_an_account_never_locks():
    """An address many people share (an office, a carrier) adds up honest typos over a day:
    it only waits after 100 failures within the hour its window opened in, until that hour
    is over (or support clears it). An account name, which anyone can fail logins for,
    only ever waits (never locks)."""
    address = "address:203.0.113.9"
    assert throttle_after_failures(address, 99).retry_after(NOW, 1) == 0
    burst = throttle_after_failures(address, 100)
    assert burst.retry_after(NOW + timedelta(minutes=20), 1) == 40 * 60
    assert burst.retry_after(NOW + domain.ADDRESS_WINDOW, 1) == 0
    assert [e.type for e in burst.clear("support", NOW)] == ["login_failures_cleared"]
    # Typos spread over the day never add up: each hour's window starts again from zero.
    events = []
    for hour in range(24):
        for n in range(10):
            events += Throttle.replay(address, recorded("t", events)).count(f"a{hour}-{n}", NOW + timedelta(hours=hour))
    spread = Throttle.replay(address, recorded("t", events))
    assert spread.failures == 10 and spread.retry_after(NOW + timedelta(hours=23), 1) == 0
    account = throttle_after_failures("account:ann", 100)
    assert account.retry_after(NOW + domain.THROTTLE_MAX_DELAY, 1) == 0


def registered(two_factor=True):
    return User.register("u1", "Ann", "ann@example.com", "+31612345678", "argon2-hash", two_factor)


def test_registration_normalises_the_username_and_checks_fields():
    assert registered()[0].data["username"] == "ann"
    with pytest.raises(ValidationFailed) as raised:
        User.register("u1", "a b", "x@example.com", "0612", "h", True)
    assert set(raised.value.fields) == {"username", "phone"}


def test_password_policy():
    assert domain.check_password_policy("short", "ann")
    assert domain.check_password_policy("ann" * 5, "annannannannann")
    assert domain.check_password_policy("x" * 129, "ann")
    assert domain.check_password_policy("correct horse battery", "ann") == []


def test_a_reset_token_works_once_and_for_an_hour():
    history = registered()
    user = User.replay("u1", recorded("user-u1", history))
    history += user.request_password_reset("r1", "token-hash", NOW)
    user = User.replay("u1", recorded("user-u1", history))
    with pytest.raises(Unauthenticated):
        user.reset_password("r1", "token-hash", "new-hash", NOW + timedelta(hours=1, seconds=1))
    with pytest.raises(Unauthenticated):
        user.reset_password("r1", "other-hash", "new-hash", NOW)
    history += user.reset_password("r1", "token-hash", "new-hash", NOW)
    user = User.replay("u1", recorded("user-u1", history))
    assert user.password_hash == "new-hash"
    with pytest.raises(Unauthenticated):
        user.reset_password("r1", "token-hash", "again", NOW)


def test_at_most_three_working_reset_links_per_account():
    history = registered()
    for n in range(4):
        user = User.replay("u1", recorded("user-u1", history))
        history += user.request_password_reset(f"r{n}", f"hash-{n}", NOW + timedelta(minutes=n))
    user = User.replay("u1", recorded("user-u1", history))
    assert sorted(user.resets) == ["r0", "r1", "r2"]  # the fourth made no link
    # The first one expiring frees a place.
    assert len(user.request_password_reset("r5", "hash-5", NOW + timedelta(minutes=61))) == 1
    # Using one spends them all (changed with the audit: the others used to stay valid).
    history += user.reset_password("r1", "hash-1", "new-hash", NOW + timedelta(minutes=5))
    user = User.replay("u1", recorded("user-u1", history))
    for n in range(3):
        history += user.request_password_reset(f"r{n + 10}", f"hash-{n + 10}", NOW + timedelta(minutes=6))
        user = User.replay("u1", recorded("user-u1", history))
    assert user.request_password_reset("r13", "hash-13", NOW + timedelta(minutes=7)) == []


def test_recovery_codes_are_single_use():
    history = registered()
    user = User.replay("u1", recorded("user-u1", history))
    history += user.start_totp_enrolment("e1")
    user = User.replay("u1", recorded("user-u1", history))
    history += user.confirm_totp("e1", True, ["h1", "h2"])
    user = User.replay("u1", recorded("user-u1", history))
    history += user.use_recovery_code("h2")
    user = User.replay("u1", recorded("user-u1", history))
    with pytest.raises(Unauthenticated):
        user.use_recovery_code("h2")
    assert user.use_recovery_code("h1")[0].data == {"index": 0}


def test_recovery_codes_look_random_and_normalise():
    codes = domain.new_recovery_codes()
    assert len(set(codes)) == 10
    assert domain.normalize_recovery_code(codes[0].upper()) == codes[0].replace("-", "")


def test_phone_is_masked():
    assert domain.mask_phone("+31612345678") == "+31 •••• ••78"


def test_no_event_carries_a_secret():
    code = "987654"
    history = challenge_with_code(code)
    assert code not in str([e.data for e in history])
