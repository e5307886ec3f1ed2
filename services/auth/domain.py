"""The auth domain: users, two-factor challenges, login throttling and password resets.

Pure code: no nameko, no database, no network. Aggregates are folded from their events and
their command methods check invariants and return new events (past-tense facts). Secrets
never enter an event: passwords only as argon2id hashes, one-time codes and reset tokens
only as keyed hashes (``secret_hash``), TOTP secrets not at all (derived from the server
key and an enrolment id).

Streams: ``user-<id>`` (User), ``challenge-<id>`` (Challenge), ``throttle-<key>``
(Throttle, one per account name, per client address and per user's second factor),
``logins-<user id>`` (login/logout facts, appended at any version), ``apitoken-<id>``
(ApiToken).
"""

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import string
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common.errors import (
    Conflict,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import Aggregate, NewEvent
from common.scopes import API_TOKEN_PREFIX

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=5)
CHALLENGE_LIFETIME = timedelta(minutes=15)
MAX_WRONG_GUESSES = 5
MAX_SENDS = 5  # per challenge, the first one included
SEND_WINDOW = timedelta(minutes=10)
RESET_TOKEN_LIFETIME = timedelta(hours=1)
MAX_LIVE_RESET_LINKS = 3  # unused, unexpired reset links per account: no mailbox flooding
RECOVERY_CODE_COUNT = 10
THROTTLE_FREE_FAILURES = 4  # the 5th consecutive failure starts the delays
THROTTLE_MAX_DELAY = timedelta(minutes=15)
ADDRESS_LOCK_AT = 100  # failures from one address within ADDRESS_WINDOW: it waits for the window's end
ADDRESS_WINDOW = timedelta(hours=1)
RESET_REQUESTS_PER_WINDOW = 20  # password reset requests from one address within ADDRESS_WINDOW
API_TOKEN_GUESSES_PER_WINDOW = 50  # unknown API tokens from one address within ADDRESS_WINDOW
SECOND_FACTOR_LOCK_AT = 20  # wrong codes in a row: locked until a password reset or support
THROTTLE_LOCK_RETRY_AFTER = 3600  # the Retry-After of a locked key
PASSWORD_MIN, PASSWORD_MAX = 10, 128
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
SMS_CHANNELS = ("sms", "sms_alt")
CHANNELS = ("sms", "sms_alt", "voice")


# -- small pure helpers ------------------------------------------------------------------

def normalize_username(username):
    return (username or "").strip().lower()


def secret_hash(key, *parts):
    """Keyed hash of a secret (one-time code, token): useless without the server key."""
    message = "\x1f".join(parts).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def new_code():
    """A 6-digit one-time code from the operating system's CSPRNG."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def new_token():
    """A 256-bit URL-safe random token (session tokens, reset tokens)."""
    return secrets.token_urlsafe(32)


def new_recovery_codes():
    """Ten single-use recovery codes like ``k7q2-9xmd-4p8w`` (about 60 bits each)."""
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
            for _ in range(RECOVERY_CODE_COUNT)]


def normalize_recovery_code(code):
    return re.sub(r"[^0-9a-z]", "", (code or "").lower())


def mask_phone(phone):
    """``+31612345678`` → ``+31 •••• ••78``: enough to recognise, not to reuse."""
    if not phone:
        return None
    return f"{phone[:3]} •••• ••{phone[-2:]}"


def check_password_policy(password, username):
    problems = []
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        problems.append(f"At least {PASSWORD_MIN} characters.")
    elif len(password) > PASSWORD_MAX:
        problems.append(f"At most {PASSWORD_MAX} characters.")
    elif normalize_username(password) == normalize_username(username):
        problems.append("Must differ from the username.")
    return problems


def matching_totp_step(codes_by_step, code, after_step=0):
    """The step (later than ``after_step``) whose expected code, in ``codes_by_step``
    (step -> code), is ``code``; None when none is. Constant-time comparisons."""
    for step, expected in codes_by_step.items():
        if hmac.compare_digest(expected.encode(), str(code).encode()) and step > after_step:
            return step
    return None


def iso(moment):
    return moment.isoformat()


def parse(moment):
    return datetime.fromisoformat(moment) if moment else None


INVALID_CREDENTIALS = "The username or password is wrong."
INVALID_CODE = "The code is wrong or has expired."


def invalid_credentials():
    return error_with_code(Unauthenticated, "invalid_credentials", INVALID_CREDENTIALS)


def invalid_code():
    return error_with_code(Unauthenticated, "invalid_code", INVALID_CODE)


def invalid_reset_token():
    return error_with_code(Unauthenticated, "invalid_token", "The reset link is invalid or has expired.")


# -- login facts --------------------------------------------------------------------------
# Logins, logouts, enrolments and completed resets, published for the action log. Not an
# aggregate (nothing is decided from them): appended at any version.

def logins_stream(user_id):
    return f"logins-{user_id}"


def login_fact(event_type, user_id, at, **data):
    """A fact of ``logins_stream(user_id)``: its ``user_id``, then ``data``, then ``at``."""
    return NewEvent(event_type, {"user_id": user_id, **data, "at": iso(at)})


# -- users --------------------------------------------------------------------------------

@dataclass
class User(Aggregate):
    stream_prefix = "user"

    user_id: str
    version: int = 0
    username: str = ""
    email: str = ""
    phone: str = ""
    password_hash: str = ""
    two_factor: bool = False
    totp_enrolment: str = None  # id of the confirmed TOTP enrolment
    pending_totp: str = None
    last_totp_step: int = 0  # a TOTP code is spent once: later steps only
    recovery_hashes: list = field(default_factory=list)
    used_recovery: set = field(default_factory=set)
    resets: dict = field(default_factory=dict)  # reset_id -> {token_hash, expires_at, used}
    password_reset_at: datetime = None  # challenges issued before it are over

    # folding
    def _on_user_registered(self, data):
        self.username, self.email, self.phone = data["username"], data["email"], data["phone"]
        self.password_hash, self.two_factor = data["password_hash"], data["two_factor"]

    def _on_password_changed(self, data):
        self.password_hash = data["password_hash"]
        if data.get("reset_id"):
            self.resets[data["reset_id"]]["used"] = True
        if data.get("reason") == "reset":
            # A reset spends every link still out there and ends the challenges begun before it.
            for reset in self.resets.values():
                reset["used"] = True
            self.password_reset_at = parse(data.get("at")) or self.password_reset_at

    def _on_phone_changed(self, data):
        self.phone = data["phone"]

    def _on_two_factor_enabled(self, data):
        self.two_factor = True

    def _on_two_factor_disabled(self, data):
        self.two_factor = False

    def _on_password_reset_requested(self, data):
        self.resets[data["reset_id"]] = {"token_hash": data["token_hash"], "expires_at": data["expires_at"], "used": False}

    def _on_totp_enrolment_started(self, data):
        self.pending_totp = data["enrolment_id"]

    def _on_totp_enrolled(self, data):
        self.totp_enrolment, self.pending_totp = data["enrolment_id"], None
        self.recovery_hashes, self.used_recovery = list(data["recovery_code_hashes"]), set()

    def _on_recovery_code_used(self, data):
        self.used_recovery.add(data["index"])

    def _on_totp_code_used(self, data):
        self.last_totp_step = max(self.last_totp_step, data["step"])

    # commands
    @staticmethod
    def register(user_id, username, email, phone, password_hash, two_factor):
        username = normalize_username(username)
        problems = {}
        if not USERNAME.match(username):
            problems["username"] = ["3 to 64 characters: letters, digits, dot, dash, underscore."]
        if phone and not PHONE.match(phone):
            problems["phone"] = ["An international number such as +31612345678."]
        if two_factor and not phone:
            problems["phone"] = ["Two-factor authentication by SMS needs a mobile number."]
        if problems:
            raise ValidationFailed("The account is invalid.", fields=problems)
        return [NewEvent("user_registered", {
            "user_id": user_id, "username": username, "email": email, "phone": phone,
            "password_hash": password_hash, "two_factor": bool(two_factor),
        })]

    def request_password_reset(self, reset_id, token_hash, now):
        """A new reset link, or nothing (no event, no mail) while ``MAX_LIVE_RESET_LINKS``
        unused links of the last hour still work: the answer is the same either way."""
        live = [r for r in self.resets.values() if not r["used"] and parse(r["expires_at"]) > now]
        if len(live) >= MAX_LIVE_RESET_LINKS:
            return []
        return [NewEvent("password_reset_requested", {
            "reset_id": reset_id, "token_hash": token_hash,
            "expires_at": iso(now + RESET_TOKEN_LIFETIME),
        })]

    def reset_password(self, reset_id, token_hash, new_password_hash, now):
        reset = self.resets.get(reset_id)
        if (reset is None or reset["used"] or not hmac.compare_digest(reset["token_hash"], token_hash)
                or parse(reset["expires_at"]) <= now):
            raise invalid_reset_token()
        return [NewEvent("password_changed", {"reason": "reset", "reset_id": reset_id,
                                              "password_hash": new_password_hash, "at": iso(now)})]

    def start_totp_enrolment(self, enrolment_id):
        return [NewEvent("totp_enrolment_started", {"enrolment_id": enrolment_id})]

    def confirm_totp(self, enrolment_id, code_step, recovery_code_hashes):
        """Enrol the authenticator whose code matched at TOTP step ``code_step`` (None: no
        match); that code is spent, so it cannot open a login too."""
        if self.pending_totp != enrolment_id:
            raise Conflict("Start the enrolment first.")
        if code_step is None:
            raise invalid_code()
        return [NewEvent("totp_enrolled", {"enrolment_id": enrolment_id,
                                           "recovery_code_hashes": recovery_code_hashes}),
                NewEvent("totp_code_used", {"step": code_step})]

    def use_recovery_code(self, code_hash):
        for index, known in enumerate(self.recovery_hashes):
            if index not in self.used_recovery and hmac.compare_digest(known, code_hash):
                return [NewEvent("recovery_code_used", {"index": index})]
        raise invalid_code()

    def unspent_totp_step(self, codes_by_step, code):
        """The step of ``code`` if no code of that step or a later one was spent yet."""
        return matching_totp_step(codes_by_step, code, after_step=self.last_totp_step)

    def view(self):
        return {"id": self.user_id, "username": self.username, "phone_masked": mask_phone(self.phone),
                "two_factor": self.two_factor, "totp": self.totp_enrolment is not None}


# -- two-factor challenges ----------------------------------------------------------------

@dataclass
class Challenge(Aggregate):
    stream_prefix = "challenge"

    challenge_id: str
    version: int = 0
    user_id: str = None
    session_id: str = None
    issued_at: datetime = None
    status: str = "open"  # open | passed | dead
    wrong_guesses: int = 0
    sends: list = field(default_factory=list)  # [sent_at]
    code_hash: str = None
    code_expires_at: datetime = None
    last_provider: str = None  # of the last SMS, so sms_alt can pick the other one

    def _on_challenge_issued(self, data):
        self.user_id, self.issued_at = data["user_id"], parse(data["issued_at"])

    def _on_code_sent(self, data):
        self.sends.append(parse(data["sent_at"]))
        self.code_hash, self.code_expires_at = data["code_hash"], parse(data["expires_at"])
        if data["channel"] in SMS_CHANNELS:
            self.last_provider = data["provider"]

    def _on_code_rejected(self, data):
        self.wrong_guesses = data["wrong_guesses"]
        if data["dead"]:
            self.status = "dead"

    def _on_challenge_passed(self, data):
        self.status = "passed"

    @staticmethod
    def issue(challenge_id, user_id, now):
        return [NewEvent("challenge_issued", {"challenge_id": challenge_id, "user_id": user_id,
                                              "issued_at": iso(now)})]

    def require_open(self, now, password_reset_at=None):
        """Raise ``invalid_code`` unless the challenge can still be answered: issued, not
        passed or dead, not too old, and not begun before the user's last password reset."""
        if self.version == 0 or self.status != "open" or now >= self.issued_at + CHALLENGE_LIFETIME:
            raise invalid_code()
        if password_reset_at is not None and self.issued_at <= password_reset_at:
            raise invalid_code()

    def check_can_send(self, now):
        """Raise unless another code may be sent now (open, and under the send limits)."""
        self.require_open(now)
        recent = [sent for sent in self.sends if now - sent < SEND_WINDOW]
        if len(self.sends) >= MAX_SENDS or len(recent) >= MAX_SENDS:
            raise RateLimited("Too many codes were sent for this login; start again later.",
                              retry_after=int(SEND_WINDOW.total_seconds()))

    def send_code(self, code_hash, channel, provider, language, now):
        """Record a (re)sent code: it replaces the previous one; the guess count stays."""
        self.check_can_send(now)
        return [NewEvent("code_sent", {
            "challenge_id": self.challenge_id, "channel": channel, "provider": provider,
            "language": language, "sent_at": iso(now), "expires_at": iso(now + CODE_LIFETIME),
            "code_hash": code_hash,
        })]

    def verify_code(self, code_hash, now):
        """Events for a guess of the sent code: passed, or rejected (the challenge dies at
        the 5th wrong guess)."""
        self.require_open(now)
        if self.code_hash and now < self.code_expires_at and hmac.compare_digest(self.code_hash, code_hash):
            return self.pass_with("sms")
        return self.reject()

    def pass_with(self, method):
        """Passed by another factor the service checked (``totp``, ``recovery_code``)."""
        return [NewEvent("challenge_passed", {"challenge_id": self.challenge_id, "method": method})]

    def reject(self):
        wrong = self.wrong_guesses + 1
        return [NewEvent("code_rejected", {"challenge_id": self.challenge_id, "wrong_guesses": wrong,
                                           "dead": wrong >= MAX_WRONG_GUESSES})]


# -- throttling ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ThrottleRule:
    """How one kind of key is throttled: ``free_failures`` consecutive failures, then
    delays doubling up to ``THROTTLE_MAX_DELAY``; at ``lock_at`` failures the key is locked
    until it is cleared (``None``: never locked, delays only).

    With a ``window`` the key counts failures per window instead (the window opens at its
    first failure): no delays, and at ``lock_at`` failures within one window it waits for
    the window's end — for keys many people share, whose honest typos add up over a day
    but never to a burst."""

    free_failures: int
    lock_at: int = None
    waiting_message: str = "Too many failed logins; wait before trying again."
    locked_message: str = ""
    window: timedelta = None


THROTTLE_RULES = {
    # Anyone can fail logins for any account name: delays only, so nobody can lock a
    # customer out; a completed second factor or password reset clears it.
    "account": ThrottleRule(free_failures=THROTTLE_FREE_FAILURES),
    # An office or a mobile carrier shares one address: only a burst of failures from it
    # (password spraying across accounts) waits, until the hour it began in is over.
    "address": ThrottleRule(
        free_failures=ADDRESS_LOCK_AT, lock_at=ADDRESS_LOCK_AT, window=ADDRESS_WINDOW,
        waiting_message="Too many failed logins from this address; try again later."),
    # Reset requests always answer 202 and mail in the background; only their rate from
    # one address is limited (whatever the accounts named, so nothing tells which exist).
    "reset-address": ThrottleRule(
        free_failures=RESET_REQUESTS_PER_WINDOW, lock_at=RESET_REQUESTS_PER_WINDOW, window=ADDRESS_WINDOW,
        waiting_message="Too many password reset requests from this address; try again later."),
    # Guessing API tokens is hopeless (178 bits) but costs a lookup each: a burst of
    # unknown tokens from one address waits until the hour it began in is over.
    "api-token-address": ThrottleRule(
        free_failures=API_TOKEN_GUESSES_PER_WINDOW, lock_at=API_TOKEN_GUESSES_PER_WINDOW, window=ADDRESS_WINDOW,
        waiting_message="Too many invalid API tokens from this address; try again later."),
    # Only someone who has the password gets this far, and codes are short: it locks.
    "second-factor": ThrottleRule(
        free_failures=THROTTLE_FREE_FAILURES, lock_at=SECOND_FACTOR_LOCK_AT,
        waiting_message="Too many wrong codes; wait before trying again.",
        locked_message="Too many wrong codes: two-factor login is locked. "
                       "Reset your password or contact support."),
}


def account_key(username):
    return f"account:{normalize_username(username)[:200]}"


def address_key(client_ip):
    return f"address:{client_ip}"


def reset_address_key(client_ip):
    return f"reset-address:{client_ip}"


def api_token_address_key(client_ip):
    return f"api-token-address:{client_ip}"


def second_factor_key(user_id):
    return f"second-factor:{user_id}"


def throttle_rule(key):
    return THROTTLE_RULES[key.split(":", 1)[0]]


def throttle_delay(failures, base_seconds, free_failures=THROTTLE_FREE_FAILURES):
    """The wait imposed after ``failures`` consecutive failures (0 up to ``free_failures``)."""
    if failures <= free_failures:
        return timedelta(0)
    exponent = min(failures - free_failures - 1, 32)  # capped long before overflow
    seconds = min(base_seconds * 2 ** exponent, THROTTLE_MAX_DELAY.total_seconds())
    return timedelta(seconds=seconds)


@dataclass
class Throttle(Aggregate):
    """Consecutive failures of one key (an account name, a client address, or a user's
    second factor). An attempt is counted before it is checked and forgiven when it
    succeeds, so concurrent attempts cannot all slip through one check.

    The state is two numbers (``failures``, ``last_failure_at``), so the auth service reads
    it from its ``throttles`` read model on every attempt instead of replaying a stream that
    grows with every login (``from_row``). Forgiving an attempt takes back its count and,
    unless another attempt was counted after it, puts back the failure time it replaced:
    an honest success neither counts nor restarts the wait."""

    stream_prefix = "throttle"

    key: str
    version: int = 0
    failures: int = 0
    last_failure_at: datetime = None
    window_started_at: datetime = None  # keys whose rule has a window: when it opened

    @classmethod
    def from_row(cls, key, row):
        """The throttle as the read model has it (``row``: failures, last_failure_at,
        window_started_at, version; None for a key never counted)."""
        if row is None:
            return cls(key)
        return cls(key, version=row["version"], failures=row["failures"],
                   last_failure_at=parse(row["last_failure_at"]), window_started_at=parse(row["window_started_at"]))

    def _window_over(self, now):
        window = throttle_rule(self.key).window
        return window is not None and (self.window_started_at is None or now - self.window_started_at >= window)

    def _on_login_attempt_counted(self, data):
        at = parse(data["at"])
        if self._window_over(at):
            self.failures, self.window_started_at = 0, at
        self.failures, self.last_failure_at = self.failures + 1, at

    def _on_login_attempt_forgiven(self, data):
        counted_at = parse(data.get("counted_at"))
        if self.window_started_at is not None and counted_at is not None and counted_at < self.window_started_at:
            return  # counted in a window that has closed since: nothing of it is left
        self.failures = max(0, self.failures - 1)
        self.last_failure_at = parse(data["last_failure_at"]) if self.failures else None

    def _on_login_failures_cleared(self, data):
        self.failures, self.last_failure_at, self.window_started_at = 0, None, None

    # Streams written before attempts were counted up front.
    def _on_login_failed(self, data):
        self.failures, self.last_failure_at = data["consecutive_failures"], parse(data["at"])
        if throttle_rule(self.key).window is not None and self.window_started_at is None:
            self.window_started_at = self.last_failure_at

    _on_login_succeeded = _on_login_unlocked = _on_login_failures_cleared

    def retry_after(self, now, base_seconds):
        """Seconds to wait before the next attempt (0: go ahead); ``None`` while locked."""
        rule = throttle_rule(self.key)
        if rule.window is not None:
            if self._window_over(now) or self.failures < rule.lock_at:
                return 0
            return max(1, math.ceil((self.window_started_at + rule.window - now).total_seconds()))
        if rule.lock_at is not None and self.failures >= rule.lock_at:
            return None
        if not self.failures or self.last_failure_at is None:
            return 0
        remaining = self.last_failure_at + throttle_delay(self.failures, base_seconds, rule.free_failures) - now
        return max(0, math.ceil(remaining.total_seconds()))

    def count(self, attempt_id, now):
        """Count an attempt before it is checked. Its ``Attempt`` (what ``forgive`` needs)
        is ``attempt_of(throttle, attempt_id, now)``, taken before these events apply."""
        return [NewEvent("login_attempt_counted", {"key": self.key, "attempt_id": attempt_id, "at": iso(now)})]

    def forgive(self, attempt, now):
        """Take back a counted ``attempt`` that succeeded: one failure fewer, and the
        failure time it replaced back unless a later attempt was counted since. Nothing
        when a clear left nothing counted."""
        if not self.failures:
            return []
        counted_since = self.last_failure_at is not None and self.last_failure_at > attempt.at
        restored = self.last_failure_at if counted_since else attempt.replaced_failure_at
        return [NewEvent("login_attempt_forgiven", {
            "key": self.key, "attempt_id": attempt.attempt_id, "at": iso(now), "counted_at": iso(attempt.at),
            "last_failure_at": iso(restored) if restored else None})]

    def clear(self, reason, now):
        """Forget every failure: ``reason`` is ``login``, ``second_factor``, ``password_reset``
        or ``support``."""
        if not self.failures:
            return []
        return [NewEvent("login_failures_cleared", {"key": self.key, "reason": reason, "at": iso(now)})]


@dataclass(frozen=True)
class Attempt:
    """One counted attempt on one throttle: its id, when it was counted, and the failure
    time it replaced there (what forgiving it puts back)."""

    attempt_id: str
    at: datetime
    replaced_failure_at: datetime = None


def attempt_of(throttle, attempt_id, now):
    """The ``Attempt`` that ``throttle.count(attempt_id, now)`` records."""
    return Attempt(attempt_id, now, throttle.last_failure_at)


def check_attempt_allowed(throttles, now, base_seconds):
    """Raise ``RateLimited`` (with the longest wait) unless every throttle lets an attempt
    through now."""
    waits = [(throttle.retry_after(now, base_seconds), throttle_rule(throttle.key)) for throttle in throttles]
    for wait, rule in waits:
        if wait is None:
            raise RateLimited(rule.locked_message, retry_after=THROTTLE_LOCK_RETRY_AFTER)
    longest, rule = max(waits, key=lambda pair: pair[0], default=(0, None))
    if longest > 0:
        raise RateLimited(rule.waiting_message, retry_after=longest)


def count_attempt(throttles, attempt_id, now, base_seconds):
    """Events counting one attempt against every throttle, or ``RateLimited`` (nothing
    counted) while any of them must wait or is locked."""
    check_attempt_allowed(throttles, now, base_seconds)
    return [throttle.count(attempt_id, now) for throttle in throttles]


# -- API tokens ---------------------------------------------------------------------------
# A token looks like ``hpat_`` + 30 random base62 characters + a 6-character CRC32 of
# them (GitHub's scheme): secret scanners find it by its prefix and tell a real one from a
# look-alike by its checksum, and a typo is refused without a database read. Only a keyed
# hash of it is stored; its last four characters (the ``hint``) help the customer tell
# their tokens apart.

API_TOKEN_RANDOM_CHARS = 30  # about 178 bits
API_TOKEN_LENGTH = len(API_TOKEN_PREFIX) + API_TOKEN_RANDOM_CHARS + 6
API_TOKEN_DEFAULT_DAYS, API_TOKEN_MAX_DAYS = 90, 365
API_TOKENS_PER_USER = 50  # live (unrevoked, unexpired) tokens at once
API_TOKEN_NAME_MAX = 100
ALLOWED_ADDRESSES_MAX = 20
BASE62 = string.digits + string.ascii_letters


def _base62(number, width):
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def new_api_token():
    """A fresh API token secret (shown to the customer once)."""
    body = "".join(secrets.choice(BASE62) for _ in range(API_TOKEN_RANDOM_CHARS))
    return API_TOKEN_PREFIX + body + _base62(zlib.crc32(body.encode()), 6)


def is_api_token(token):
    """Whether ``token`` has an API token's shape and checksum (says nothing of whether it
    was ever issued)."""
    if not isinstance(token, str) or len(token) != API_TOKEN_LENGTH or not token.startswith(API_TOKEN_PREFIX):
        return False
    body, checksum = token[len(API_TOKEN_PREFIX):-6], token[-6:]
    return all(char in BASE62 for char in body) and _base62(zlib.crc32(body.encode()), 6) == checksum


def new_api_token_id():
    """A short public id such as ``tok_3f9a1c2b7d4e`` (names the token in lists and URLs)."""
    return f"tok_{secrets.token_hex(6)}"


def invalid_api_token(message="The API token is invalid."):
    return error_with_code(Unauthenticated, "invalid_token", message)


def parse_allowed_addresses(entries):
    """Client addresses and CIDR ranges a token may be used from, normalised
    (``10.1.2.3`` → ``10.1.2.3/32``, ``2001:DB8::/32`` → ``2001:db8::/32``); a bad entry
    raises ``ValidationFailed`` on ``allowed_ips``."""
    entries = list(entries or ())
    if len(entries) > ALLOWED_ADDRESSES_MAX:
        raise ValidationFailed("Too many allowed addresses.",
                               fields={"allowed_ips": [f"At most {ALLOWED_ADDRESSES_MAX} entries."]})
    networks, problems = [], []
    for entry in entries:
        try:
            network = str(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            problems.append(f"{entry!s:.60}: not an IP address or CIDR range.")
            continue
        if network not in networks:
            networks.append(network)
    if problems:
        raise ValidationFailed("An allowed address is invalid.", fields={"allowed_ips": problems})
    return networks


def address_allowed(allowed_ips, client_ip):
    """Whether ``client_ip`` is inside one of ``allowed_ips`` (every address when empty)."""
    if not allowed_ips:
        return True
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network) for network in allowed_ips)


@dataclass
class ApiToken(Aggregate):
    """One API token: who owns it, what it may do, until when, from where, and the client
    addresses it has been used from (a new one is a fact the customer hears of)."""

    stream_prefix = "apitoken"

    token_id: str
    version: int = 0
    user_id: str = ""
    name: str = ""
    scopes: list = field(default_factory=list)
    expires_at: datetime = None  # None: never
    allowed_ips: list = field(default_factory=list)
    hint: str = ""
    created_at: datetime = None
    revoked_at: datetime = None
    addresses: set = field(default_factory=set)

    def _on_api_token_created(self, data):
        self.user_id, self.name, self.scopes = data["user_id"], data["name"], list(data["scopes"])
        self.expires_at, self.allowed_ips = parse(data["expires_at"]), list(data["allowed_ips"])
        self.hint, self.created_at = data["hint"], parse(data["at"])

    def _on_api_token_secret_issued(self, data):
        pass  # only the read model needs the hash (to find the token by its secret)

    def _on_api_token_revoked(self, data):
        self.revoked_at = parse(data["at"])

    def _on_api_token_used_from_new_address(self, data):
        self.addresses.add(data["client_ip"])

    @staticmethod
    def create(token_id, user_id, name, scopes, expires_at, allowed_ips, token_hash, hint, now):
        """The events of a new token; ``scopes`` already expanded and checked."""
        name = (name or "").strip()
        if not name or len(name) > API_TOKEN_NAME_MAX:
            raise ValidationFailed("The token needs a name.", fields={"name": [f"1 to {API_TOKEN_NAME_MAX} characters."]})
        if not scopes:
            raise ValidationFailed("The token needs at least one scope.", fields={"scopes": ["At least one scope."]})
        if expires_at is not None and not now < expires_at <= now + timedelta(days=API_TOKEN_MAX_DAYS, minutes=1):
            raise ValidationFailed("Bad expiry.", fields={"expires_in_days": [f"1 to {API_TOKEN_MAX_DAYS} days."]})
        # The hash travels in an event of its own, which stays inside the auth service
        # (``api_token_created`` is published to every consumer).
        return [NewEvent("api_token_created", {
            "token_id": token_id, "user_id": user_id, "name": name, "scopes": list(scopes),
            "expires_at": iso(expires_at) if expires_at else None, "allowed_ips": list(allowed_ips),
            "hint": hint, "at": iso(now)}),
            NewEvent("api_token_secret_issued", {"token_id": token_id, "token_hash": token_hash})]

    def live(self, now):
        return self.exists and self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def revoke(self, now, reason="customer"):
        """Revoke the token (``reason``: ``customer``, ``all``); nothing when already revoked."""
        if self.revoked_at is not None:
            return []
        return [NewEvent("api_token_revoked", {"token_id": self.token_id, "user_id": self.user_id,
                                               "name": self.name, "reason": reason, "at": iso(now)})]

    def check_usable(self, now, client_ip):
        """Raise ``invalid_token`` (401) unless the token may be used now from ``client_ip``."""
        if not self.exists:
            raise invalid_api_token()
        if self.revoked_at is not None:
            raise invalid_api_token("This API token has been revoked.")
        if self.expires_at is not None and now >= self.expires_at:
            raise invalid_api_token(f"This API token expired at {iso(self.expires_at)}.")
        if not address_allowed(self.allowed_ips, client_ip):
            raise invalid_api_token("This API token may not be used from this address.")

    def note_use(self, client_ip, now):
        """The event of a first use from ``client_ip``, or nothing for a known address."""
        if not client_ip or client_ip in self.addresses:
            return []
        return [NewEvent("api_token_used_from_new_address", {
            "token_id": self.token_id, "user_id": self.user_id, "name": self.name,
            "client_ip": client_ip, "first_use": not self.addresses, "at": iso(now)})]

    def view(self, last_used_at=None, last_used_ip=None, now=None):
        """The token as the API lists it (never its secret or hash)."""
        status = "active"
        if self.revoked_at is not None:
            status = "revoked"
        elif self.expires_at is not None and now is not None and now >= self.expires_at:
            status = "expired"
        return {"id": self.token_id, "name": self.name, "scopes": list(self.scopes), "hint": self.hint,
                "allowed_ips": list(self.allowed_ips), "status": status,
                "created_at": iso(self.created_at) if self.created_at else None,
                "expires_at": iso(self.expires_at) if self.expires_at else None,
                "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
                "last_used_at": last_used_at, "last_used_ip": last_used_ip}
