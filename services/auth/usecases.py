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
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from common.eventstore import ANY_VERSION, NewEvent, retrying
from services.auth import domain
from services.auth.adapters import DeliveryFailed
from services.auth.adapters.voice import LANGUAGES
from services.auth.api_tokens import ApiTokenUseCases
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
        self.api_tokens = ApiTokenUseCases(store, clock, self.key, throttling=self)

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
        user = self.store.get(domain.User, user_id)
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
        self.store.create(domain.User, user_id, events)
        return self.get_user(user_id)

    # -- throttling ------------------------------------------------------------------------
    # Every attempt is counted before it is checked (in one transaction taken in the log's
    # append order, so concurrent attempts see each other) and forgiven when it succeeds.

    def _load_throttle(self, key, tx=None):
        """The key's throttle from the read model (in ``tx`` when given: after its
        ``lock_log`` it is current); one row, however long the stream has grown."""
        query = sa.select(throttles).where(throttles.c.key == key)
        if tx is not None:
            return domain.Throttle.from_row(key, tx.conn.execute(query).mappings().first())
        with self.store.engine.connect() as conn:
            return domain.Throttle.from_row(key, conn.execute(query).mappings().first())

    def _count_attempt(self, keys):
        """Count one attempt against every key: ``{key: domain.Attempt}`` (what forgiving it
        needs); ``RateLimited`` (nothing counted) while a key must wait or is locked."""
        attempt_id = context.new_id()

        def count():
            with self.store.transaction() as tx:
                tx.lock_log()
                now = self.clock.now()
                throttles = [self._load_throttle(key, tx) for key in keys]
                counted = domain.count_attempt(throttles, attempt_id, now, self.throttle_base)
                for throttle, events in zip(throttles, counted):
                    tx.save(throttle, events)
                return {throttle.key: domain.attempt_of(throttle, attempt_id, now) for throttle in throttles}
        return retrying(count)

    def _change_throttles(self, keys, change):
        """Append ``change(throttle, now)``'s events to each key's throttle, in one transaction."""
        def run():
            with self.store.transaction() as tx:
                self._append_throttle_changes(tx, keys, change)
        retrying(run)

    def _append_throttle_changes(self, tx, keys, change):
        tx.lock_log()
        for key in keys:
            throttle = self._load_throttle(key, tx)
            tx.save(throttle, change(throttle, self.clock.now()))

    def _settle_attempt(self, attempts, forgiven_keys, cleared_keys=()):
        """After a successful login step: forgive the attempt on ``forgiven_keys`` and clear
        ``cleared_keys`` entirely (an address keeps its count: one good login must not
        wipe the failures of a password sprayer)."""
        def settle(throttle, now):
            if throttle.key in cleared_keys:
                return throttle.clear("login", now)
            return throttle.forgive(attempts[throttle.key], now)
        self._change_throttles([*cleared_keys, *forgiven_keys], settle)

    def _check_not_throttled(self, keys):
        throttles = [self._load_throttle(key) for key in keys]
        domain.check_attempt_allowed(throttles, self.clock.now(), self.throttle_base)

    # what ``ApiTokenUseCases`` throttles unknown tokens with
    check_not_throttled = _check_not_throttled

    def count_failure(self, keys):
        """Count a failed attempt (never forgiven) against every key."""
        self._count_attempt(keys)

    def unlock(self, username=None, client_ip=None):
        """Support: clear the failures of an account (its second factor too) and/or a client address."""
        keys = []
        if username:
            keys.append(domain.account_key(username))
            user_id = self._user_id_by_username(username)
            if user_id:
                keys.append(domain.second_factor_key(user_id))
        if client_ip:
            keys.append(domain.address_key(client_ip))
        self._change_throttles(keys, lambda throttle, now: throttle.clear("support", now))
        return {"unlocked": keys}

    # -- login -----------------------------------------------------------------------------

    def login(self, username, password, client_ip, session_id):
        """Check a password. Unknown users and wrong passwords get the same answer, after
        the same work (an argon2 verification either way)."""
        account = domain.account_key(username if isinstance(username, str) else "")
        addresses = [domain.address_key(client_ip)] if client_ip else []
        attempts = self._count_attempt([account, *addresses])
        user_id = self._user_id_by_username(username) if isinstance(username, str) else None
        user = self._load_user(user_id) if user_id else None
        matches = self._password_matches(user.password_hash if user else self._dummy_hash, password or "")
        if not (user and matches):
            self._check_not_throttled([account, *addresses])  # the 5th failure already answers 429
            raise domain.invalid_credentials()
        self._rehash_if_needed(user, password)
        if user.two_factor or user.totp_enrolment:
            # The account's failures are cleared only once the second factor passes.
            self._settle_attempt(attempts, forgiven_keys=[account, *addresses])
            self._check_not_throttled([domain.second_factor_key(user.user_id)])
            return self._start_challenge(user)
        self._settle_attempt(attempts, forgiven_keys=addresses, cleared_keys=[account])
        self._record_login(user, session_id, client_ip, method="password")
        return {"status": "ok", "user": user.view()}

    def _rehash_if_needed(self, user, password):
        if self.hasher.check_needs_rehash(user.password_hash):
            events = [NewEvent("password_changed", {"reason": "rehash", "password_hash": self.hash_password(password)})]
            try:
                self.store.save(user, events)
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
        self.store.create(domain.Challenge, challenge_id,
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
        return self.store.get(domain.Challenge, challenge_id)

    def _open_challenge(self, challenge_id):
        """The challenge and its user; ``invalid_code`` unless it can still be answered."""
        challenge = self._load_challenge(challenge_id)
        challenge.require_open(self.clock.now())
        user = self._load_user(challenge.user_id)
        challenge.require_open(self.clock.now(), user.password_reset_at)
        return challenge, user

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
        self.store.save(challenge, events)
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
        challenge, user = self._open_challenge(challenge_id)
        self._check_not_throttled([domain.second_factor_key(user.user_id)])
        if not (user.two_factor and user.phone):
            raise ValidationFailed("This account has no phone for codes.", fields={"channel": ["Not available."]})
        try:
            return self._send_code(challenge_id, user, channel, language)
        except DeliveryFailed:
            raise ServiceUnavailable("The code could not be delivered; try another channel.")

    def verify(self, challenge_id, code, session_id, client_ip, recovery_code=None):
        """Check a code (SMS/voice code, TOTP code or recovery code) against a challenge.
        Wrong codes count against the user whatever the challenge; a pass clears them and
        the account's password failures."""
        challenge, user = self._open_challenge(challenge_id)
        second_factor = domain.second_factor_key(user.user_id)
        self._count_attempt([second_factor])
        now = self.clock.now()
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
            tx.save(challenge, events)
            if user_events:
                tx.save(user, user_events)
        if events[0].type != "challenge_passed":
            raise domain.invalid_code()
        self._change_throttles([second_factor, domain.account_key(user.username)],
                               lambda throttle, now: throttle.clear("second_factor", now))
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

    def _totp_codes(self, user, enrolment_id, now):
        """The codes of the current TOTP step and its neighbours (clock drift): step -> code."""
        totp = self._totp(user, enrolment_id)
        current = int(now.timestamp()) // 30
        return {step: totp.at(step * 30) for step in (current, current - 1, current + 1)}

    def _verify_totp(self, user, code, now):
        """Events that spend a TOTP code, or [] when it is wrong or already used."""
        step = user.unspent_totp_step(self._totp_codes(user, user.totp_enrolment, now), code)
        return [] if step is None else [NewEvent("totp_code_used", {"step": step})]

    # -- TOTP enrolment --------------------------------------------------------------------

    def start_totp(self, user_id):
        user = self._load_user(user_id)
        enrolment_id = context.new_id()
        self.store.save(user, user.start_totp_enrolment(enrolment_id))
        uri = self._totp(user, enrolment_id).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
        return {"enrolment_id": enrolment_id, "provisioning_uri": uri}

    def confirm_totp(self, user_id, enrolment_id, code):
        user = self._load_user(user_id)
        code_step = domain.matching_totp_step(self._totp_codes(user, enrolment_id, self.clock.now()), str(code or ""))
        codes = domain.new_recovery_codes()
        hashes = [domain.secret_hash(self.key, "recovery", user_id, domain.normalize_recovery_code(c)) for c in codes]
        events = user.confirm_totp(enrolment_id, code_step, hashes)
        with self.store.transaction() as tx:
            tx.save(user, events)
            # Published for the action log (the recovery code hashes above never are).
            tx.append(f"logins-{user_id}", ANY_VERSION, [NewEvent("authenticator_app_enrolled", {
                "user_id": user_id, "at": self.clock.now().isoformat()})])
        return {"recovery_codes": codes}

    # -- password recovery -----------------------------------------------------------------

    def count_reset_request(self, client_ip):
        """Count a password reset request against its address: ``RateLimited`` past
        ``RESET_REQUESTS_PER_WINDOW`` within the hour (whichever accounts were named)."""
        if client_ip:
            self._count_attempt([domain.reset_address_key(client_ip)])

    def forgot_password(self, username):
        """Send a reset link when the account exists (and has fewer than
        ``MAX_LIVE_RESET_LINKS`` working ones); the caller always answers 202, and runs
        this in the background so that neither the time to answer nor a slow mail server
        tells whether the account exists."""
        user_id = self._user_id_by_username(username) if isinstance(username, str) else None
        if not user_id:
            return
        token = domain.new_token()
        reset_id = context.new_id()
        token_hash = domain.secret_hash(self.key, "reset", token)

        def request():  # again when a concurrent request (or login) moved the user on
            user = self._load_user(user_id)
            events = user.request_password_reset(reset_id, token_hash, self.clock.now())
            if events:
                self.store.save(user, events)
            return user if events else None

        user = retrying(request)
        if user is None:
            log.info("password reset not sent: the account's reset links of the last hour still work",
                     extra={"user_id": user_id})
            return
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
            tx.save(user, events)
            tx.append(f"logins-{user.user_id}", ANY_VERSION, [NewEvent("password_reset_completed", {
                "user_id": user.user_id, "at": self.clock.now().isoformat()})])
            # Whoever completes a reset owns the mailbox: their account is no longer throttled.
            self._append_throttle_changes(
                tx, [domain.account_key(user.username), domain.second_factor_key(user.user_id)],
                lambda throttle, now: throttle.clear("password_reset", now))
        return {"user_id": user.user_id}
