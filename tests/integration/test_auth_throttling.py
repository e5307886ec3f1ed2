"""Login throttling through the gateway (API.md: 429 ``rate_limited`` with Retry-After):
second-factor guessing per account, count-first attempts, what a success, a password
reset and support clear. The gateways trust X-Forwarded-For here, so each test picks the
client address a request comes from."""

import re
import threading

import pyotp
import pytest

from common.db import create_engine
from deploy.components import migrate
from gateway.service import GatewayService
from services.auth import domain
from services.auth.service import AuthService
from tests.integration.test_auth import FAST_ARGON2, PASSWORD, SECRET_KEY, Panel
from tests.support import free_port, store_of, wait_for

BASE_DELAY = 60  # THROTTLE_BASE_DELAY_SECONDS: the first wait, doubling up to 15 min


@pytest.fixture
def panel(start_service, amqp_uri, tmp_path, standins, database_url):
    """As in test_auth, with the auth service on SQLite and on PostgreSQL (the count-first
    transaction orders writers differently on each)."""
    standins.clear()
    auth_url = database_url
    gateway_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate("auth", create_engine(auth_url))
    migrate("gateway", create_engine(gateway_url))
    auth = start_service(
        AuthService, DATABASE_URL=auth_url, METRICS_PORT="off", AUTH_SECRET_KEY=SECRET_KEY,
        CLOCK_ADJUSTABLE=True, THROTTLE_BASE_DELAY_SECONDS=BASE_DELAY, **FAST_ARGON2, **standins.config,
    )
    gateways = []
    for _ in range(2):
        port = free_port()
        start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=gateway_url,
                      METRICS_PORT="off", SESSION_COOKIE_SECURE=False, TRUST_X_FORWARDED_FOR=True)
        gateways.append(f"http://127.0.0.1:{port}")
    return Panel(amqp_uri, gateways, auth, standins)


def login(panel, username, password, address="198.51.100.1", gateway=0):
    return panel.post("/auth/login", {"username": username, "password": password}, gateway,
                      headers={"X-Forwarded-For": address})


def verify(panel, challenge_id, code, address="198.51.100.1"):
    return panel.post("/auth/2fa/verify", {"challenge_id": challenge_id, "code": code},
                      headers={"X-Forwarded-For": address})


def wrong_code_for(code):
    return "000000" if code != "000000" else "111111"


def advance_clock(panel, seconds):
    with panel.rpc() as auth:
        auth.advance_clock(seconds)


def reset_tokens(panel, username, count):
    mails = wait_for(lambda: (found := [m for m in panel.standins.messages("mail") if f"{username}@example.com" in m["to"]])
                     and len(found) >= count and found, message=f"{count} reset e-mails")
    return [re.search(r"token=([A-Za-z0-9_-]+)", mail["text"]).group(1) for mail in mails]


def reset_password(panel, username, new_password):
    assert panel.post("/auth/password/forgot", {"username": username}).status_code == 202
    [token] = reset_tokens(panel, username, 1)
    assert panel.post("/auth/password/reset", {"token": token, "new_password": new_password}).status_code == 204


# -- second factor: wrong codes count per account, whatever the challenge -------------------

def test_wrong_codes_count_against_the_account_across_challenges(panel):
    """R-AUTH-2: a fresh challenge (a new login with the known password) no longer brings
    five fresh guesses: from the 5th wrong code on, the account waits, answered 429."""
    panel.register("ann")
    first = login(panel, "ann", PASSWORD).json()
    wrong = wrong_code_for(panel.last_code())
    for _ in range(4):
        assert verify(panel, first["challenge_id"], wrong).status_code == 401
    second = login(panel, "ann", PASSWORD).json()
    assert second["status"] == "2fa_required"
    assert verify(panel, second["challenge_id"], wrong_code_for(panel.last_code())).status_code == 401

    throttled = verify(panel, second["challenge_id"], panel.last_code())  # even the right code
    assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "rate_limited"
    wait = int(throttled.headers["Retry-After"])
    assert wait >= BASE_DELAY - 1
    assert login(panel, "ann", PASSWORD).status_code == 429  # no new challenge (nor SMS) meanwhile

    advance_clock(panel, wait + 1)
    assert verify(panel, second["challenge_id"], panel.last_code()).status_code == 200
    third = login(panel, "ann", PASSWORD).json()  # the pass cleared the count
    assert verify(panel, third["challenge_id"], wrong_code_for(panel.last_code())).status_code == 401


def test_many_wrong_codes_lock_two_factor_login_until_a_password_reset(panel):
    panel.register("ann")
    for _ in range(20):
        advance_clock(panel, 15 * 60)  # past any delay: only the lock stops guessing
        challenge = login(panel, "ann", PASSWORD).json()
        assert challenge["status"] == "2fa_required"
        assert verify(panel, challenge["challenge_id"], wrong_code_for(panel.last_code())).status_code == 401

    advance_clock(panel, 24 * 3600)
    locked = login(panel, "ann", PASSWORD)
    assert locked.status_code == 429 and "locked" in locked.json()["error"]["message"]

    reset_password(panel, "ann", "brand-new-password-2")
    challenge = login(panel, "ann", "brand-new-password-2").json()
    assert verify(panel, challenge["challenge_id"], panel.last_code()).status_code == 200


def test_the_right_password_clears_the_account_failures_only_once_the_second_factor_passes(panel):
    panel.register("ann")
    for n in range(4):
        assert login(panel, "ann", "wrong-password", address=f"203.0.113.{n}").status_code == 401
    challenge = login(panel, "ann", PASSWORD, address="203.0.113.10").json()
    assert challenge["status"] == "2fa_required"
    # The password alone did not clear the account's four failures: a fifth waits.
    assert login(panel, "ann", "wrong-password", address="203.0.113.11").status_code == 429

    advance_clock(panel, BASE_DELAY + 1)
    assert verify(panel, challenge["challenge_id"], panel.last_code(), address="203.0.113.10").status_code == 200
    assert login(panel, "ann", "wrong-password", address="203.0.113.12").status_code == 401


# -- passwords: what a success clears; count first ---------------------------------------

def test_a_spraying_address_waits_out_its_hour_whatever_its_own_successes(panel):
    """A sprayer guesses one password per account (no account ever waits) and logs into its
    own account between guesses to reset its address (what a success used to do): the
    100th failure within the hour makes the address wait until that hour is over — even
    with the right password. Other addresses, and typos spread over a day, never wait."""
    panel.register("mallory", two_factor=False)
    sprayer = "192.0.2.66"
    for n in range(domain.ADDRESS_LOCK_AT - 1):
        assert login(panel, f"victim{n}", "guess-password", address=sprayer).status_code == 401
        if n % 4 == 3:
            assert login(panel, "mallory", PASSWORD, address=sprayer).status_code == 200
    # The 100th failure already answers 429, as the 5th does for an account.
    assert login(panel, "victim-last", "guess-password", address=sprayer).status_code == 429
    refused = login(panel, "mallory", PASSWORD, address=sprayer)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= domain.ADDRESS_WINDOW.total_seconds()
    assert login(panel, "mallory", PASSWORD, address="198.51.100.200").status_code == 200
    advance_clock(panel, int(refused.headers["Retry-After"]))
    assert login(panel, "mallory", PASSWORD, address=sprayer).status_code == 200


def test_concurrent_wrong_passwords_cannot_all_pass_one_check(panel):
    """Attempts are counted before the password is checked: of twenty at once, only five
    reach the password check (one per count the throttle allows); the others wait."""
    panel.register("bob", two_factor=False)
    start = threading.Barrier(20)
    statuses = []

    def attempt(n):
        start.wait()
        statuses.append(login(panel, "bob", "wrong-password", address=f"198.51.100.{n + 20}", gateway=n % 2).status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == 20 and set(statuses) <= {401, 429}
    assert statuses.count(401) <= 4
    # One throttle event per attempt let through to the password check.
    assert len(store_of(panel.auth_container).load_stream("throttle-account:bob")) == 5


def test_a_completed_password_reset_clears_the_account_delays(panel):
    panel.register("bob", two_factor=False)
    for n in range(6):
        advance_clock(panel, 15 * 60)
        login(panel, "bob", "wrong-password", address=f"203.0.113.{n + 50}")
    assert login(panel, "bob", PASSWORD, address="203.0.113.99").status_code == 429
    reset_password(panel, "bob", "brand-new-password-2")
    assert login(panel, "bob", "brand-new-password-2", address="203.0.113.99").status_code == 200


# -- TOTP and password resets ------------------------------------------------------------

def test_the_code_that_confirmed_an_authenticator_cannot_open_a_login(panel):
    panel.register("bob", two_factor=False)
    bearer = {"Authorization": "Bearer " + login(panel, "bob", PASSWORD).json()["token"]}
    started = panel.post("/auth/2fa/totp", headers=bearer).json()
    code = pyotp.parse_uri(started["provisioning_uri"]).now()
    confirmed = panel.post("/auth/2fa/totp/confirm", {"enrolment_id": started["enrolment_id"], "code": code},
                           headers=bearer)
    assert confirmed.status_code == 200
    challenge = login(panel, "bob", PASSWORD).json()
    assert verify(panel, challenge["challenge_id"], code).status_code == 401


def test_a_password_reset_spends_every_reset_link_and_ends_open_challenges(panel):
    """R-AUTH-5."""
    panel.register("ann")
    challenge = login(panel, "ann", PASSWORD).json()
    code = panel.last_code()
    for _ in range(2):
        assert panel.post("/auth/password/forgot", {"username": "ann"}).status_code == 202
    first, second = reset_tokens(panel, "ann", 2)
    assert panel.post("/auth/password/reset", {"token": first, "new_password": "brand-new-password-2"}).status_code == 204

    other_link = panel.post("/auth/password/reset", {"token": second, "new_password": "another-password-3"})
    assert other_link.status_code == 401 and other_link.json()["error"]["code"] == "invalid_token"
    assert verify(panel, challenge["challenge_id"], code).status_code == 401
    assert panel.post("/auth/2fa/resend", {"challenge_id": challenge["challenge_id"], "channel": "sms"}).status_code == 401


def test_reset_requests_from_one_address_are_limited_per_hour_whatever_the_accounts(panel):
    """Password reset requests answer 202 for any name (nothing tells which accounts exist)
    and mail in the background; one address gets 20 an hour, then waits out the hour."""
    panel.register("ann")
    crowd = "192.0.2.77"

    def forgot(username, address=crowd):
        return panel.post("/auth/password/forgot", {"username": username}, headers={"X-Forwarded-For": address})

    for n in range(domain.RESET_REQUESTS_PER_WINDOW):
        assert forgot("ann" if n == 0 else f"nobody{n}").status_code == 202
    refused = forgot("ann")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= domain.ADDRESS_WINDOW.total_seconds()
    assert forgot("nobody", address="198.51.100.9").status_code == 202
    advance_clock(panel, int(refused.headers["Retry-After"]))
    assert forgot("ann").status_code == 202
