"""Throttling: failed attempts counted per key (account name, client address, second factor,
reset requests and API token guesses from an address) and what they make an attempt wait.

Every attempt is counted before it is checked (in one transaction taken in the log's
append order, so concurrent attempts see each other) and forgiven when it succeeds. The
rules are ``domain.Throttle``'s; the state of each key is one row of the ``throttles``
read model.
"""

import sqlalchemy as sa

from common import context
from common.eventstore import retrying
from services.auth import domain
from services.auth.projections import throttles


class Throttling:
    """Counts, checks, forgives and clears attempts per throttle key (support's ``unlock`` too)."""

    def __init__(self, store, clock, accounts, base_delay):
        self.store = store
        self.clock = clock
        self.accounts = accounts
        self.base_delay = base_delay  # seconds: THROTTLE_BASE_DELAY_SECONDS

    def _load(self, key, tx=None):
        """The key's throttle from the read model (in ``tx`` when given: after its
        ``lock_log`` it is current); one row, however long the stream has grown."""
        query = sa.select(throttles).where(throttles.c.key == key)
        if tx is not None:
            return domain.Throttle.from_row(key, tx.conn.execute(query).mappings().first())
        with self.store.engine.connect() as conn:
            return domain.Throttle.from_row(key, conn.execute(query).mappings().first())

    def count_attempt(self, keys):
        """Count one attempt against every key: ``{key: domain.Attempt}`` (what forgiving it
        needs); ``RateLimited`` (nothing counted) while a key must wait or is locked."""
        attempt_id = context.new_id()

        def count():
            with self.store.transaction() as tx:
                tx.lock_log()
                now = self.clock.now()
                throttles = [self._load(key, tx) for key in keys]
                counted = domain.count_attempt(throttles, attempt_id, now, self.base_delay)
                for throttle, events in zip(throttles, counted):
                    tx.save(throttle, events)
                return {throttle.key: domain.attempt_of(throttle, attempt_id, now) for throttle in throttles}
        return retrying(count)

    def count_failure(self, keys):
        """Count a failed attempt (never forgiven) against every key."""
        self.count_attempt(keys)

    def check_not_throttled(self, keys):
        """``RateLimited`` while any of ``keys`` must wait or is locked."""
        throttles = [self._load(key) for key in keys]
        domain.check_attempt_allowed(throttles, self.clock.now(), self.base_delay)

    def settle_attempt(self, attempts, forgiven_keys, cleared_keys=()):
        """After a successful login step: forgive the attempt on ``forgiven_keys`` and clear
        ``cleared_keys`` entirely (an address keeps its count: one good login must not
        wipe the failures of a password sprayer)."""
        def settle(throttle, now):
            if throttle.key in cleared_keys:
                return throttle.clear("login", now)
            return throttle.forgive(attempts[throttle.key], now)
        self._change([*cleared_keys, *forgiven_keys], settle)

    def clear(self, keys, reason):
        """Clear every key's failures, in one transaction."""
        self._change(keys, lambda throttle, now: throttle.clear(reason, now))

    def clear_in(self, tx, keys, reason):
        """Clear every key's failures in the caller's transaction ``tx``."""
        self._append_changes(tx, keys, lambda throttle, now: throttle.clear(reason, now))

    def unlock(self, username=None, client_ip=None):
        """Support: clear the failures of an account (its second factor too) and/or a client address."""
        keys = []
        if username:
            keys.append(domain.account_key(username))
            user_id = self.accounts.user_id_by_username(username)
            if user_id:
                keys.append(domain.second_factor_key(user_id))
        if client_ip:
            keys.append(domain.address_key(client_ip))
        self.clear(keys, "support")
        return {"unlocked": keys}

    def _change(self, keys, change):
        """Append ``change(throttle, now)``'s events to each key's throttle, in one transaction."""
        def run():
            with self.store.transaction() as tx:
                self._append_changes(tx, keys, change)
        retrying(run)

    def _append_changes(self, tx, keys, change):
        tx.lock_log()
        for key in keys:
            throttle = self._load(key, tx)
            tx.save(throttle, change(throttle, self.clock.now()))
