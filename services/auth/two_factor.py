"""Two-factor: the challenge after a password, its codes (SMS with provider fail-over, the
other SMS provider, a voice call), TOTP codes and recovery codes, and TOTP enrolment.

Codes are delivered outside any database transaction. Their keyed hashes, and the TOTP
secret (derived from the server key and the enrolment, never stored), come from
``AUTH_SECRET_KEY``.
"""

import base64
import logging

import pyotp

from common import context
from common.errors import ServiceUnavailable, Unauthenticated, ValidationFailed
from common.eventstore import ANY_VERSION, NewEvent
from services.auth import domain
from services.auth.adapters import DeliveryFailed
from services.auth.adapters.voice import DEFAULT_LANGUAGE, LANGUAGES

log = logging.getLogger(__name__)

TOTP_ISSUER = "HostPanel"


class TwoFactor:
    """Starts, re-sends and verifies challenges; enrols authenticator apps (TOTP)."""

    def __init__(self, store, clock, key, accounts, throttling, sms, voice):
        self.store = store
        self.clock = clock
        self.key = key
        self.accounts = accounts
        self.throttling = throttling
        self.sms = sms
        self.voice = voice

    def _code_hash(self, challenge_id, code):
        return domain.secret_hash(self.key, "code", challenge_id, code)

    def _recovery_hash(self, user_id, recovery_code):
        return domain.secret_hash(self.key, "recovery", user_id, domain.normalize_recovery_code(recovery_code))

    # -- challenges ------------------------------------------------------------------------

    def channels_of(self, user):
        channels = list(domain.CHANNELS) if user.two_factor and user.phone else []
        if user.totp_enrolment:
            channels.append("totp")
        if user.recovery_hashes:
            channels.append("recovery_code")
        return channels

    def start_challenge(self, user):
        """After the password: a new challenge, its first code sent by SMS when the user has a phone."""
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
        user = self.accounts.load(challenge.user_id)
        challenge.require_open(self.clock.now(), user.password_reset_at)
        return challenge, user

    def _send_code(self, challenge_id, user, channel, language=None):
        """Deliver a new code by ``channel`` and record it (it replaces the previous one)."""
        challenge = self._load_challenge(challenge_id)
        code = domain.new_code()
        code_hash = self._code_hash(challenge_id, code)
        now = self.clock.now()
        challenge.check_can_send(now)  # before delivering anything
        text = f"Your HostPanel login code is {code}. It expires in 5 minutes."
        if channel == "voice":
            provider = self.voice.name
            self.voice.call(user.phone, code, language)
        elif channel == "sms_alt":
            provider = self.sms.send_with(self.sms.other_than(challenge.last_provider), user.phone, text)
        else:
            provider = self.sms.send(user.phone, text)
        events = challenge.send_code(code_hash, channel, provider, language, self.clock.now())
        self.store.save(challenge, events)
        return {"channel": channel, "provider": provider, "language": language}

    def resend_code(self, challenge_id, channel, language=None):
        if channel not in ("sms", "sms_alt", "voice"):
            raise ValidationFailed("Unknown channel.", fields={"channel": ["One of sms, sms_alt, voice."]})
        if channel == "voice":
            language = language or DEFAULT_LANGUAGE
            if language not in LANGUAGES:
                raise ValidationFailed("Unknown language.", fields={"language": [f"One of {', '.join(LANGUAGES)}."]})
        else:
            language = None
        challenge, user = self._open_challenge(challenge_id)
        self.throttling.check_not_throttled([domain.second_factor_key(user.user_id)])
        if not (user.two_factor and user.phone):
            raise ValidationFailed("This account has no phone for codes.", fields={"channel": ["Not available."]})
        try:
            return self._send_code(challenge_id, user, channel, language)
        except DeliveryFailed:
            raise ServiceUnavailable("The code could not be delivered; try another channel.")

    def verify_code(self, challenge_id, code, session_id, client_ip, recovery_code=None):
        """Check a code (SMS/voice code, TOTP code or recovery code) against a challenge.
        Wrong codes count against the user whatever the challenge; a pass clears them and
        the account's password failures."""
        challenge, user = self._open_challenge(challenge_id)
        second_factor = domain.second_factor_key(user.user_id)
        self.throttling.count_attempt([second_factor])
        now = self.clock.now()
        if recovery_code:
            events, user_events = self._verify_recovery(challenge, user, recovery_code)
        else:
            code = str(code or "")
            events, user_events = challenge.verify_code(self._code_hash(challenge_id, code), now), []
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
        self.throttling.clear([second_factor, domain.account_key(user.username)], "second_factor")
        method = events[0].data["method"]
        self.accounts.record_login(user, session_id, client_ip, method=method)
        return {"status": "ok", "user": user.view()}

    def _verify_recovery(self, challenge, user, recovery_code):
        code_hash = self._recovery_hash(user.user_id, recovery_code)
        try:
            return challenge.pass_with("recovery_code"), user.use_recovery_code(code_hash)
        except Unauthenticated:
            return challenge.reject(), []

    # -- TOTP ------------------------------------------------------------------------------

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

    def start_totp(self, user_id):
        user = self.accounts.load(user_id)
        enrolment_id = context.new_id()
        self.store.save(user, user.start_totp_enrolment(enrolment_id))
        uri = self._totp(user, enrolment_id).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
        return {"enrolment_id": enrolment_id, "provisioning_uri": uri}

    def confirm_totp(self, user_id, enrolment_id, code):
        user = self.accounts.load(user_id)
        code_step = domain.matching_totp_step(self._totp_codes(user, enrolment_id, self.clock.now()), str(code or ""))
        codes = domain.new_recovery_codes()
        hashes = [self._recovery_hash(user_id, c) for c in codes]
        events = user.confirm_totp(enrolment_id, code_step, hashes)
        with self.store.transaction() as tx:
            tx.save(user, events)
            # Published for the action log (the recovery code hashes above never are).
            tx.append(domain.logins_stream(user_id), ANY_VERSION, [domain.login_fact(
                "authenticator_app_enrolled", user_id, self.clock.now())])
        return {"recovery_codes": codes}
