"""The auth service's use cases: what each RPC does, step by step.

Each method loads aggregates (``domain``), asks them for events, appends those to the store
and talks to the outside world through the adapters. Network calls (SMS, voice, mail)
never happen inside a database transaction. Password hashing runs in eventlet's thread
pool so it never blocks the service's other greenthreads.
"""

import base64
import logging

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

from common import context
from common.errors import (
    ConcurrencyConflict,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from common.eventstore import ANY_VERSION, NewEvent
from services.auth import domain
from services.auth.adapters import DeliveryFailed
from services.auth.adapters.voice import LANGUAGES
from services.auth.projections import password_resets, throttles, users

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
TOTP_ISSUER = "HostPanel"


def make_hasher(config):
    """argon2id with the configured cost (defaults: t=3, m=46 MiB, p=1 ≈ 120 ms here)."""
    return PasswordHasher(
        time_cost=int(config.get("ARGON2_TIME_COST", 3)),
        memory_cost=int(config.get("ARGON2_MEMORY_KIB", 47104)),
        parallelism=int(config.get("ARGON2_PARALLELISM", 1)),
        type=Type.ID,
    )


def retry_on_conflict(command, attempts=5):
    """Run ``command`` again when a concurrent writer moved its stream on."""
    for attempt in range(attempts):
        try:
            return command()
        except ConcurrencyConflict:
            if attempt == attempts - 1:
                raise


class AuthUseCases:
    def __init__(self, store, adapters, clock, config):
        self.store = store
        self.adapters = adapters
        self.clock = clock
        self.key = config.get("AUTH_SECRET_KEY") or ""
        if len(self.key) < 32:
            raise RuntimeError("AUTH_SECRET_KEY must be set (at least 32 characters) in the environment")
        self.hasher = make_hasher(config)
        self.throttle_base = float(config.get("THROTTLE_BASE_DELAY_SECONDS", 1.0))
        self.panel_url = config.get("PANEL_URL", "http://127.0.0.1:8000")
        # Verified against when the username is unknown, so both cases cost the same.
        self._dummy_hash = self.hasher.hash(domain.new_token())

    # -- passwords -------------------------------------------------------------------------

    def hash_password(self, password):
        return tpool.execute(self.hasher.hash, password)

    def _password_matches(self, password_hash, password):
        try:
            return tpool.execute(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # -- reading ---------------------------------------------------------------------------

    def _load_user(self, user_id):
        user = domain.User.replay(user_id, self.store.load_stream(f"user-{user_id}"))
        if not user.exists:
            raise NotFound("no such user")
        return user

    def _user_id_by_username(self, username):
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(users.c.user_id).where(users.c.username == domain.normalize_username(username))
            ).scalar()

    def get_user(self, user_id):
        return self._load_user(user_id).view()

    def user_id_of(self, username):
        user_id = self._user_id_by_username(username)
        if not user_id:
            raise NotFound("No such user.")
        return user_id

    # -- registration ----------------------------------------------------------------------

    def register_user(self, username, password, email, phone=None, two_factor=False):
        problems = domain.check_password_policy(password, username)
        if problems:
            raise ValidationFailed("The password is too weak.", fields={"password": problems})
        if self._user_id_by_username(username):
            raise ValidationFailed("This username is taken.", fields={"username": ["Already taken."]})
        user_id = context.new_id()
        events = domain.User.register(user_id, username, email, phone, self.hash_password(password), two_factor)
        self.store.append(f"user-{user_id}", 0, events)
        return self.get_user(user_id)

    # -- throttling ------------------------------------------------------------------------

    def _throttle_keys(self, username, client_ip):
        keys = [f"account:{domain.normalize_username(username)[:200]}"]
        if client_ip:
            keys.append(f"address:{client_ip}")
        return keys

    def _throttle(self, key):
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(throttles).where(throttles.c.key == key)).mappings().first()
        throttle = domain.Throttle(key)
        if row is not None:
            throttle.version, throttle.failures = row["version"], row["failures"]
            throttle.last_failure_at = domain.parse(row["last_failure_at"])
        return throttle

    def _check_throttles(self, keys):
        now = self.clock.now()
        waits = [self._throttle(key).retry_after(now, self.throttle_base) for key in keys]
        if None in waits:
            raise RateLimited("Too many failed logins: this account is locked. Contact support to unlock it.",
                              retry_after=3600)
        if max(waits) > 0:
            raise RateLimited("Too many failed logins; wait before trying again.", retry_after=max(waits))

    def _record_throttle(self, keys, change):
        for key in keys:
            def append(key=key):
                throttle = self._throttle(key)
                events = change(throttle, self.clock.now())
                if events:
                    self.store.append(f"throttle-{key}", throttle.version, events)
            retry_on_conflict(append)

    def unlock(self, username=None, client_ip=None):
        """Support: clear the failure count of an account and/or a client address."""
        keys = []
        if username:
            keys.append(self._throttle_keys(username, None)[0])
        if client_ip:
            keys.append(f"address:{client_ip}")
        self._record_throttle(keys, lambda throttle, now: throttle.unlock(now))
        return {"unlocked": keys}

    # -- login -----------------------------------------------------------------------------

    def login(self, username, password, client_ip, session_id):
        """Check a password. Unknown users and wrong passwords get the same answer, after
        the same work (an argon2 verification either way)."""
        keys = self._throttle_keys(username, client_ip)
        self._check_throttles(keys)
        user_id = self._user_id_by_username(username) if isinstance(username, str) else None
        user = self._load_user(user_id) if user_id else None
        matches = self._password_matches(user.password_hash if user else self._dummy_hash, password or "")
        if not (user and matches):
            self._record_throttle(keys, lambda throttle, now: throttle.fail(now))
            self._check_throttles(keys)  # the 5th failure already answers 429
            raise domain.invalid_credentials()
        self._record_throttle(keys, lambda throttle, now: throttle.succeed(now))
        self._rehash_if_needed(user, password)
        if user.two_factor or user.totp_enrolment:
            return self._start_challenge(user)
        self._record_login(user, session_id, client_ip, method="password")
        return {"status": "ok", "user": user.view()}

    def _rehash_if_needed(self, user, password):
        if self.hasher.check_needs_rehash(user.password_hash):
            events = [NewEvent("password_changed", {"reason": "rehash", "password_hash": self.hash_password(password)})]
            try:
                self.store.append(f"user-{user.user_id}", user.version, events)
            except ConcurrencyConflict:
                pass  # rehashing is best effort; the next login tries again

    def _record_login(self, user, session_id, client_ip, method):
        self.store.append(f"logins-{user.user_id}", ANY_VERSION, [NewEvent("user_logged_in", {
            "user_id": user.user_id, "session_id": session_id, "method": method,
            "client_ip": client_ip, "at": self.clock.now().isoformat(),
        })], metadata={"user_id": user.user_id, "session_id": session_id})

    def record_logout(self, user_id, session_id, everywhere=False):
        self.store.append(f"logins-{user_id}", ANY_VERSION, [NewEvent("user_logged_out", {
            "user_id": user_id, "session_id": session_id, "everywhere": everywhere,
            "at": self.clock.now().isoformat(),
        })], metadata={"user_id": user_id, "session_id": session_id})

    # -- two-factor ------------------------------------------------------------------------

    def channels_of(self, user):
        channels = list(domain.CHANNELS) if user.two_factor and user.phone else []
        if user.totp_enrolment:
            channels.append("totp")
        if user.recovery_hashes:
            channels.append("recovery_code")
        return channels

    def _start_challenge(self, user):
        challenge_id = context.new_id()
        self.store.append(f"challenge-{challenge_id}", 0,
                          domain.Challenge.issue(challenge_id, user.user_id, self.clock.now()))
        sent_via = None
        if user.two_factor and user.phone:
            try:
                sent_via = self._send_code(challenge_id, user, channel="sms")["provider"]
            except DeliveryFailed:
                log.warning("no SMS provider delivered the login code", extra={"challenge_id": challenge_id})
        return {"status": "2fa_required", "challenge_id": challenge_id, "channels": self.channels_of(user),
                "expires_in": int(domain.CODE_LIFETIME.total_seconds()), "sent_via": sent_via}

    def _load_challenge(self, challenge_id):
        if not isinstance(challenge_id, str) or len(challenge_id) > 64:
            raise domain.invalid_code()
        return domain.Challenge.replay(challenge_id, self.store.load_stream(f"challenge-{challenge_id}"))

    def _send_code(self, challenge_id, user, channel, language=None):
        """Deliver a new code by ``channel`` and record it (it replaces the previous one)."""
        challenge = self._load_challenge(challenge_id)
        code = domain.new_code()
        code_hash = domain.secret_hash(self.key, "code", challenge_id, code)
        now = self.clock.now()
        challenge.check_can_send(now)  # before delivering anything
        text = f"Your HostPanel login code is {code}. It expires in 5 minutes."
        if channel == "voice":
            provider = self.adapters.voice.name
            self.adapters.voice.call(user.phone, code, language)
        elif channel == "sms_alt":
            provider = self.adapters.sms.send_with(self.adapters.sms.other_than(challenge.last_provider), user.phone, text)
        else:
            provider = self.adapters.sms.send(user.phone, text)
        events = challenge.send_code(code_hash, channel, provider, language, self.clock.now())
        self.store.append(f"challenge-{challenge_id}", challenge.version, events)
        return {"channel": channel, "provider": provider, "language": language}

    def resend(self, challenge_id, channel, language=None):
        if channel not in ("sms", "sms_alt", "voice"):
            raise ValidationFailed("Unknown channel.", fields={"channel": ["One of sms, sms_alt, voice."]})
        if channel == "voice":
            language = language or DEFAULT_LANGUAGE
            if language not in LANGUAGES:
                raise ValidationFailed("Unknown language.", fields={"language": [f"One of {', '.join(LANGUAGES)}."]})
        else:
            language = None
        challenge = self._load_challenge(challenge_id)
        challenge.require_open(self.clock.now())
        user = self._load_user(challenge.user_id)
        if not (user.two_factor and user.phone):
            raise ValidationFailed("This account has no phone for codes.", fields={"channel": ["Not available."]})
        try:
            return self._send_code(challenge_id, user, channel, language)
        except DeliveryFailed:
            raise ServiceUnavailable("The code could not be delivered; try another channel.")

    def verify(self, challenge_id, code, session_id, client_ip, recovery_code=None):
        """Check a code (SMS/voice code, TOTP code or recovery code) against a challenge."""
        challenge = self._load_challenge(challenge_id)
        now = self.clock.now()
        challenge.require_open(now)
        user = self._load_user(challenge.user_id)
        if recovery_code:
            events, user_events = self._verify_recovery(challenge, user, recovery_code)
        else:
            code = str(code or "")
            code_hash = domain.secret_hash(self.key, "code", challenge_id, code)
            events, user_events = challenge.verify_code(code_hash, now), []
            if events[0].type == "code_rejected" and user.totp_enrolment:
                totp_events = self._verify_totp(user, code, now)
                if totp_events:
                    events, user_events = challenge.pass_with("totp"), totp_events
        with self.store.transaction() as tx:
            tx.append(f"challenge-{challenge_id}", challenge.version, events)
            if user_events:
                tx.append(f"user-{user.user_id}", user.version, user_events)
        if events[0].type != "challenge_passed":
            raise domain.invalid_code()
        method = events[0].data["method"]
        self._record_login(user, session_id, client_ip, method=method)
        return {"status": "ok", "user": user.view()}

    def _verify_recovery(self, challenge, user, recovery_code):
        code_hash = domain.secret_hash(self.key, "recovery", user.user_id, domain.normalize_recovery_code(recovery_code))
        try:
            return challenge.pass_with("recovery_code"), user.use_recovery_code(code_hash)
        except Unauthenticated:
            return challenge.reject(), []

    def _totp(self, user, enrolment_id):
        """The TOTP of an enrolment: its secret is derived from the server key, never stored."""
        secret = domain.secret_hash(self.key, "totp", user.user_id, enrolment_id)
        return pyotp.TOTP(base64.b32encode(bytes.fromhex(secret)[:20]).decode())

    def _verify_totp(self, user, code, now):
        """Events that spend a TOTP code, or [] when it is wrong or already used."""
        totp = self._totp(user, user.totp_enrolment)
        for drift in (0, -1, 1):
            step = int(now.timestamp()) // 30 + drift
            if code == totp.at(step * 30) and step > user.last_totp_step:
                return [NewEvent("totp_code_used", {"step": step})]
        return []

    # -- TOTP enrolment --------------------------------------------------------------------

    def start_totp(self, user_id):
        user = self._load_user(user_id)
        enrolment_id = context.new_id()
        self.store.append(f"user-{user_id}", user.version, user.start_totp_enrolment(enrolment_id))
        uri = self._totp(user, enrolment_id).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
        return {"enrolment_id": enrolment_id, "provisioning_uri": uri}

    def confirm_totp(self, user_id, enrolment_id, code):
        user = self._load_user(user_id)
        totp = self._totp(user, enrolment_id)
        code_ok = totp.verify(str(code or ""), for_time=self.clock.now(), valid_window=1)
        codes = domain.new_recovery_codes()
        hashes = [domain.secret_hash(self.key, "recovery", user_id, domain.normalize_recovery_code(c)) for c in codes]
        events = user.confirm_totp(enrolment_id, code_ok, hashes)
        with self.store.transaction() as tx:
            tx.append(f"user-{user_id}", user.version, events)
            # Published for the action log (the recovery code hashes above never are).
            tx.append(f"logins-{user_id}", ANY_VERSION, [NewEvent("authenticator_app_enrolled", {
                "user_id": user_id, "at": self.clock.now().isoformat()})])
        return {"recovery_codes": codes}

    # -- password recovery -----------------------------------------------------------------

    def forgot_password(self, username):
        """Send a reset link when the account exists (and has fewer than
        ``MAX_LIVE_RESET_LINKS`` working ones); the caller always answers 202, and runs
        this in the background so that neither the time to answer nor a slow mail server
        tells whether the account exists."""
        user_id = self._user_id_by_username(username) if isinstance(username, str) else None
        if not user_id:
            return
        user = self._load_user(user_id)
        token = domain.new_token()
        reset_id = context.new_id()
        token_hash = domain.secret_hash(self.key, "reset", token)
        events = user.request_password_reset(reset_id, token_hash, self.clock.now())
        if not events:
            log.info("password reset not sent: the account's reset links of the last hour still work",
                     extra={"user_id": user_id})
            return
        self.store.append(f"user-{user_id}", user.version, events)
        link = f"{self.panel_url}/reset-password?token={token}"
        body = (f"Hello {user.username},\n\nsomeone asked to reset your HostPanel password. "
                f"If it was you, open this link within an hour:\n\n{link}\n\n"
                "If it was not you, ignore this message: your password stays as it is.\n")
        try:
            self.adapters.mail.send(user.email, "Reset your HostPanel password", body)
        except DeliveryFailed:
            log.warning("the password reset e-mail could not be sent", extra={"user_id": user_id})

    def reset_password(self, token, new_password):
        token_hash = domain.secret_hash(self.key, "reset", str(token or ""))
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(password_resets).where(password_resets.c.token_hash == token_hash)).mappings().first()
        if row is None:
            raise domain.invalid_reset_token()
        user = self._load_user(row["user_id"])
        problems = domain.check_password_policy(new_password, user.username)
        if problems:
            raise ValidationFailed("The password is too weak.", fields={"new_password": problems})
        events = user.reset_password(row["reset_id"], token_hash, self.hash_password(new_password), self.clock.now())
        with self.store.transaction() as tx:
            tx.append(f"user-{user.user_id}", user.version, events)
            tx.append(f"logins-{user.user_id}", ANY_VERSION, [NewEvent("password_reset_completed", {
                "user_id": user.user_id, "at": self.clock.now().isoformat()})])
        return {"user_id": user.user_id}
