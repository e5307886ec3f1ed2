"""Accounts: registering a user, finding one, their password, and the record of their logins.

The other auth use cases (logins, two-factor, password resets, throttling) share these.
Password hashing (argon2id) runs in eventlet's thread pool so it never blocks the
service's other greenthreads.
"""

import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

from common import context
from common.errors import ConcurrencyConflict, NotFound, ValidationFailed
from common.eventstore import ANY_VERSION, NewEvent
from services.auth import domain
from services.auth.projections import users


def make_hasher(config):
    """argon2id with the configured cost (defaults: t=3, m=46 MiB, p=1 ≈ 120 ms here)."""
    return PasswordHasher(
        time_cost=int(config.get("ARGON2_TIME_COST", 3)),
        memory_cost=int(config.get("ARGON2_MEMORY_KIB", 47104)),
        parallelism=int(config.get("ARGON2_PARALLELISM", 1)),
        type=Type.ID,
    )


class Accounts:
    """Users by id or name, registration, password hashing and checking, recorded logins."""

    def __init__(self, store, clock, hasher):
        self.store = store
        self.clock = clock
        self.hasher = hasher
        # Verified against when the username is unknown, so both cases cost the same.
        self._dummy_hash = self.hasher.hash(domain.new_token())

    # -- reading ---------------------------------------------------------------------------

    def load(self, user_id):
        user = self.store.get(domain.User, user_id)
        if not user.exists:
            raise NotFound("no such user")
        return user

    def user_id_by_username(self, username):
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(users.c.user_id).where(users.c.username == domain.normalize_username(username))
            ).scalar()

    def get_user(self, user_id):
        return self.load(user_id).view()

    def user_id_of(self, username):
        user_id = self.user_id_by_username(username)
        if not user_id:
            raise NotFound("No such user.")
        return user_id

    # -- registration ----------------------------------------------------------------------

    def register_user(self, username, password, email, phone=None, two_factor=False):
        problems = domain.check_password_policy(password, username)
        if problems:
            raise ValidationFailed("The password is too weak.", fields={"password": problems})
        if self.user_id_by_username(username):
            raise ValidationFailed("This username is taken.", fields={"username": ["Already taken."]})
        user_id = context.new_id()
        events = domain.User.register(user_id, username, email, phone, self.hash_password(password), two_factor)
        self.store.create(domain.User, user_id, events)
        return self.get_user(user_id)

    # -- passwords -------------------------------------------------------------------------

    def hash_password(self, password):
        return tpool.execute(self.hasher.hash, password)

    def password_matches(self, user, password):
        """Whether ``password`` is ``user``'s; with no user, False after the same argon2 work."""
        try:
            matches = tpool.execute(self.hasher.verify, user.password_hash if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            matches = False
        return bool(user and matches)

    def rehash_if_needed(self, user, password):
        """Upgrade a hash made with older argon2 parameters (``password`` has just matched it)."""
        if self.hasher.check_needs_rehash(user.password_hash):
            events = [NewEvent("password_changed", {"reason": "rehash", "password_hash": self.hash_password(password)})]
            try:
                self.store.save(user, events)
            except ConcurrencyConflict:
                pass  # rehashing is best effort; the next login tries again

    # -- the login record ------------------------------------------------------------------

    def record_login(self, user, session_id, client_ip, method):
        """``user_logged_in`` on the user's logins stream, after a password or a second factor."""
        self.store.append(domain.logins_stream(user.user_id), ANY_VERSION, [domain.login_fact(
            "user_logged_in", user.user_id, self.clock.now(),
            session_id=session_id, method=method, client_ip=client_ip,
        )], metadata={"user_id": user.user_id, "session_id": session_id})
