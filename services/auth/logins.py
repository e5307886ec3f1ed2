"""Logins: the password step of a login, and the logout facts the gateway reports.

The sessions themselves belong to the gateway; this records their user side on the
``logins-<user id>`` stream. A password that needs a second factor hands over to
``TwoFactor``.
"""

from common.eventstore import ANY_VERSION
from services.auth import domain


class Logins:
    """Checks a password (throttled, the same work for unknown users) and records logouts."""

    def __init__(self, store, clock, accounts, throttling, two_factor):
        self.store = store
        self.clock = clock
        self.accounts = accounts
        self.throttling = throttling
        self.two_factor = two_factor

    def login(self, username, password, client_ip, session_id):
        """Check a password. Unknown users and wrong passwords get the same answer, after
        the same work (an argon2 verification either way)."""
        account = domain.account_key(username if isinstance(username, str) else "")
        addresses = [domain.address_key(client_ip)] if client_ip else []
        attempts = self.throttling.count_attempt([account, *addresses])
        user_id = self.accounts.user_id_by_username(username) if isinstance(username, str) else None
        user = self.accounts.load(user_id) if user_id else None
        if not self.accounts.password_matches(user, password or ""):
            self.throttling.check_not_throttled([account, *addresses])  # the 5th failure already answers 429
            raise domain.invalid_credentials()
        self.accounts.rehash_if_needed(user, password)
        if user.two_factor or user.totp_enrolment:
            # The account's failures are cleared only once the second factor passes.
            self.throttling.settle_attempt(attempts, forgiven_keys=[account, *addresses])
            self.throttling.check_not_throttled([domain.second_factor_key(user.user_id)])
            return self.two_factor.start_challenge(user)
        self.throttling.settle_attempt(attempts, forgiven_keys=addresses, cleared_keys=[account])
        self.accounts.record_login(user, session_id, client_ip, method="password")
        return {"status": "ok", "user": user.view()}

    def record_logout(self, user_id, session_id, everywhere=False):
        self.store.append(domain.logins_stream(user_id), ANY_VERSION, [domain.login_fact(
            "user_logged_out", user_id, self.clock.now(), session_id=session_id, everywhere=everywhere,
        )], metadata={"user_id": user_id, "session_id": session_id})
