"""Password resets: a single-use link mailed to the account's address, and the new password
it sets.

Requests are counted per client address; the mail goes out in the background, so neither
the answer nor its timing tells whether the account exists. Only the token's keyed hash
is kept.
"""

import logging

import sqlalchemy as sa

from common import context
from common.errors import ValidationFailed
from common.eventstore import ANY_VERSION, retrying
from services.auth import domain
from services.auth.adapters import DeliveryFailed
from services.auth.projections import password_resets

log = logging.getLogger(__name__)


class PasswordResets:
    """Counts reset requests, mails reset links, and completes a reset with its token."""

    def __init__(self, store, clock, key, accounts, throttling, mail, panel_url):
        self.store = store
        self.clock = clock
        self.key = key
        self.accounts = accounts
        self.throttling = throttling
        self.mail = mail
        self.panel_url = panel_url  # PANEL_URL: where the link points

    def _token_hash(self, token):
        return domain.secret_hash(self.key, "reset", token)

    def count_reset_request(self, client_ip):
        """Count a password reset request against its address: ``RateLimited`` past
        ``RESET_REQUESTS_PER_WINDOW`` within the hour (whichever accounts were named)."""
        if client_ip:
            self.throttling.count_attempt([domain.reset_address_key(client_ip)])

    def forgot_password(self, username):
        """Send a reset link when the account exists (and has fewer than
        ``MAX_LIVE_RESET_LINKS`` working ones); the caller always answers 202, and runs
        this in the background so that neither the time to answer nor a slow mail server
        tells whether the account exists."""
        user_id = self.accounts.user_id_by_username(username) if isinstance(username, str) else None
        if not user_id:
            return
        token = domain.new_token()
        reset_id = context.new_id()
        token_hash = self._token_hash(token)

        def request():  # again when a concurrent request (or login) moved the user on
            user = self.accounts.load(user_id)
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
            self.mail.send(user.email, "Reset your HostPanel password", body)
        except DeliveryFailed:
            log.warning("the password reset e-mail could not be sent", extra={"user_id": user_id})

    def reset_password(self, token, new_password):
        token_hash = self._token_hash(str(token or ""))
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(password_resets).where(password_resets.c.token_hash == token_hash)).mappings().first()
        if row is None:
            raise domain.invalid_reset_token()
        user = self.accounts.load(row["user_id"])
        problems = domain.check_password_policy(new_password, user.username)
        if problems:
            raise ValidationFailed("The password is too weak.", fields={"new_password": problems})
        events = user.reset_password(row["reset_id"], token_hash, self.accounts.hash_password(new_password),
                                     self.clock.now())
        with self.store.transaction() as tx:
            tx.save(user, events)
            tx.append(domain.logins_stream(user.user_id), ANY_VERSION, [domain.login_fact(
                "password_reset_completed", user.user_id, self.clock.now())])
            # Whoever completes a reset owns the mailbox: their account is no longer throttled.
            self.throttling.clear_in(tx, [domain.account_key(user.username), domain.second_factor_key(user.user_id)],
                                     "password_reset")
        return {"user_id": user.user_id}
