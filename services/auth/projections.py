"""Schema and read models of the auth service.

- ``users``: one row per account, for lookups by username and the session view;
- ``password_resets``: reset token hash → user, so a reset link finds its account;
- ``throttles``: consecutive failures per account name, client address and user's second
  factor, read on every login attempt (the stream is the truth; this is its latest state,
  folded by ``domain.Throttle``);
- ``api_tokens``: token hash → token id and owner, and each customer's list of tokens.

``api_token_usage`` (when and from where each token was last used) is not a read model:
it is written on use, at most once a minute per token, and is not rebuilt from events
(a use is not a fact worth an event; a first use from a new address is, and has one).
"""

import json
from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.service_schema import ServiceSchema
from services.auth.domain import Throttle

schema = ServiceSchema("auth", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

users = sa.Table(
    "users", metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("phone", sa.String(20), nullable=True),
    sa.Column("two_factor", sa.Boolean, nullable=False),
    sa.Column("totp", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

password_resets = sa.Table(
    "password_resets", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("reset_id", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)

throttles = sa.Table(
    "throttles", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.String(40), nullable=True),
    sa.Column("window_started_at", sa.String(40), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),  # set by the event after creation
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=True),
    sa.Column("revoked_at", sa.String(40), nullable=True),
)

api_token_usage = sa.Table(
    "api_token_usage", metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("last_used_at", sa.String(40), nullable=False),
    sa.Column("last_used_ip", sa.String(64), nullable=True),
)


class UsersProjection(Projection):
    tables = (users,)

    def when_user_registered(self, conn, event):
        data = event.data
        conn.execute(users.insert().values(
            user_id=data["user_id"], username=data["username"], email=data["email"], phone=data["phone"],
            two_factor=data["two_factor"], totp=False, created_at=event.recorded_at.isoformat(),
        ))

    def _update(self, conn, event, **values):
        conn.execute(users.update().where(users.c.user_id == event.stream_id.removeprefix("user-")).values(**values))

    def when_phone_changed(self, conn, event):
        self._update(conn, event, phone=event.data["phone"])

    def when_two_factor_enabled(self, conn, event):
        self._update(conn, event, two_factor=True)

    def when_two_factor_disabled(self, conn, event):
        self._update(conn, event, two_factor=False)

    def when_totp_enrolled(self, conn, event):
        self._update(conn, event, totp=True)


class PasswordResetsProjection(Projection):
    tables = (password_resets,)

    def when_password_reset_requested(self, conn, event):
        conn.execute(password_resets.insert().values(
            token_hash=event.data["token_hash"], user_id=event.stream_id.removeprefix("user-"),
            reset_id=event.data["reset_id"], expires_at=event.data["expires_at"],
        ))


class ThrottlesProjection(Projection):
    """The latest state of each ``throttle-<key>`` stream, folded by the domain's own
    ``Throttle`` (one row per key, read on every login attempt)."""

    tables = (throttles,)

    def _fold(self, conn, event):
        key = event.data["key"]
        row = conn.execute(sa.select(throttles).where(throttles.c.key == key)).mappings().first()
        throttle = Throttle.from_row(key, row)
        throttle.apply(event)
        values = dict(failures=throttle.failures, version=throttle.version,
                      last_failure_at=throttle.last_failure_at.isoformat() if throttle.last_failure_at else None,
                      window_started_at=throttle.window_started_at.isoformat() if throttle.window_started_at else None)
        if row is None:
            conn.execute(throttles.insert().values(key=key, **values))
        else:
            conn.execute(throttles.update().where(throttles.c.key == key).values(**values))

    when_login_attempt_counted = when_login_attempt_forgiven = when_login_failures_cleared = _fold
    when_login_failed = when_login_succeeded = when_login_unlocked = _fold


class ApiTokensProjection(Projection):
    tables = (api_tokens,)

    def when_api_token_created(self, conn, event):
        data = event.data
        conn.execute(api_tokens.insert().values(
            token_id=data["token_id"], user_id=data["user_id"], token_hash=None, name=data["name"],
            scopes=json.dumps(data["scopes"]), created_at=data["at"], expires_at=data["expires_at"]))

    def when_api_token_secret_issued(self, conn, event):
        conn.execute(api_tokens.update().where(api_tokens.c.token_id == event.data["token_id"])
                     .values(token_hash=event.data["token_hash"]))

    def when_api_token_revoked(self, conn, event):
        conn.execute(api_tokens.update().where(api_tokens.c.token_id == event.data["token_id"])
                     .values(revoked_at=event.data["at"]))


schema.add_projection(UsersProjection())
schema.add_projection(PasswordResetsProjection())
schema.add_projection(ThrottlesProjection())
schema.add_projection(ApiTokensProjection())
