"""Gateway sessions (R-AUTH-6/7): the only state the gateway keeps.

A session token is 256 random bits, given to the client once (body and HttpOnly cookie)
and stored only as its SHA-256 hash, so a copy of the database opens no session. A session
ends after ``SESSION_IDLE_SECONDS`` without use (30 min) or ``SESSION_ABSOLUTE_SECONDS``
after login (12 h), at logout (the row is deleted: the token never works again), at "sign
out everywhere", and when the password is reset. Every gateway instance shares the table
(one SQLite file on one machine, PostgreSQL when scaled out), so any instance can check
any token.
"""

import hashlib
import logging
import secrets
from datetime import timedelta

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from werkzeug.http import dump_cookie

from common import context
from common.db import create_engine
from common.errors import Unauthenticated
from common.eventstore import as_utc, utcnow
from common.scopes import API_TOKEN_PREFIX
from gateway.access import check_token_may
from gateway.database import HISTORY, sessions

log = logging.getLogger(__name__)

COOKIE_NAME = "session"
TOUCH_EVERY = timedelta(seconds=60)  # write last_seen at most this often

# Built once: a session is looked up at every request.
SESSION_OF_TOKEN = sa.select(sessions).where(sessions.c.token_hash == sa.bindparam("token_hash"))
END_SESSION = sessions.delete().where(sessions.c.session_id == sa.bindparam("ended"))
TOUCH_SESSION = sessions.update().where(sessions.c.session_id == sa.bindparam("touched")).values(
    last_seen_at=sa.bindparam("seen_at"))


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine, idle_seconds=1800, absolute_seconds=43200, now=utcnow):
        self.engine = engine
        self.idle = timedelta(seconds=idle_seconds)
        self.absolute = timedelta(seconds=absolute_seconds)
        self.now = now

    def expires_at(self, row):
        return min(as_utc(row["last_seen_at"]) + self.idle, as_utc(row["absolute_expiry"]))

    def create(self, session_id, user_id, client_ip=None, user_agent=None):
        """Start a session; returns the token (shown once) and the session row."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        row = {
            "session_id": session_id, "token_hash": token_hash(token), "user_id": user_id,
            "created_at": now, "last_seen_at": now, "absolute_expiry": now + self.absolute,
            "client_ip": client_ip, "user_agent": (user_agent or "")[:300] or None,
        }
        with self.engine.begin() as conn:
            conn.execute(sessions.insert().values(**row))
        return token, row

    def find(self, token):
        """The live session of ``token``, or None (expired ones are deleted on sight)."""
        if not token or len(token) > 200:
            return None
        now = self.now()
        with self.engine.connect() as conn:
            row = conn.execute(SESSION_OF_TOKEN, {"token_hash": token_hash(token)}).mappings().first()
            if row is None:
                return None
            if now >= self.expires_at(row):
                conn.execute(END_SESSION, {"ended": row["session_id"]})
                conn.commit()
                return None
            row = dict(row)
            if now - as_utc(row["last_seen_at"]) >= TOUCH_EVERY:
                conn.execute(TOUCH_SESSION, {"touched": row["session_id"], "seen_at": now})
                conn.commit()
                row["last_seen_at"] = now
        return row

    def alive(self, session_id):
        """Whether ``session_id`` is still a live session; unlike ``find``, this does not
        count as use (an open stream must not keep an idle session alive)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.session_id == session_id)).mappings().first()
        return row is not None and self.now() < self.expires_at(row)

    def delete(self, session_id):
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.session_id == session_id))

    def delete_user(self, user_id):
        """End every session of a user; returns how many there were."""
        with self.engine.begin() as conn:
            return conn.execute(sessions.delete().where(sessions.c.user_id == user_id)).rowcount


def token_of(request):
    """The bearer token of the ``Authorization`` header, else the session cookie's."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE_NAME)


def trusted_proxy_count(setting):
    """``TRUST_X_FORWARDED_FOR``: false (no proxy in front), true (one) or a number of proxies."""
    if isinstance(setting, str):
        setting = {"true": 1, "false": 0, "": 0}.get(setting.strip().lower(), setting)
    return max(0, int(setting or 0))


def client_ip_of(request, trusted_proxies=0):
    """The client's address. Behind ``trusted_proxies`` proxies it is the entry the
    outermost of them appended to X-Forwarded-For, counted from the right: entries further
    left come from the client and prove nothing."""
    entries = [entry.strip() for entry in request.headers.get("X-Forwarded-For", "").split(",") if entry.strip()]
    if trusted_proxies and len(entries) >= trusted_proxies:
        return entries[-trusted_proxies][:64]
    return request.remote_addr


class RequestSessions:
    """Session operations for one request's worker."""

    def __init__(self, store, worker_ctx, secure_cookie, trusted_proxies):
        self.store = store
        self.worker_ctx = worker_ctx
        self.secure_cookie = secure_cookie
        self.trusted_proxies = trusted_proxies

    def client_ip(self, request):
        return client_ip_of(request, self.trusted_proxies)

    def authenticate(self, request):
        """The request's session or API token, or ``Unauthenticated`` (401); a token
        without the scope the route needs is ``forbidden`` (403, ``gateway.access``). From
        here on, every RPC of this request carries the user and session ids (for a token,
        ``token:<id>`` is its session: its actions form their own part of the action log).

        The answer has ``user_id``, ``session_id`` and ``kind`` (``session`` or ``token``);
        a token's also ``token_id``, ``scopes`` and ``token_expires_at``. Asked again
        for the same request, the first answer (``gateway.idempotency`` asks first)."""
        known = getattr(request, "panel_principal", None)
        if known is not None:
            return known
        request.panel_principal = principal = self._authenticate(request)
        return principal

    def _authenticate(self, request):
        token = token_of(request)
        if token and token.startswith(API_TOKEN_PREFIX):
            return self._authenticate_api_token(request, token)
        session = self.store.find(token)
        if session is None:
            raise Unauthenticated("Log in first: the session is missing, expired or ended.")
        self.bind(session["user_id"], session["session_id"])
        return dict(session, kind="session")

    def _authenticate_api_token(self, request, token):
        if len(token) > 200:
            raise Unauthenticated("The API token is invalid.", code="invalid_token")
        auth = self.worker_ctx.service.cluster.auth
        grant = auth.authenticate_api_token(token, client_ip=self.client_ip(request))
        session_id = f"token:{grant['token_id']}"
        self.bind(grant["user_id"], session_id)
        check_token_may(grant["scopes"], request.method, request.path)
        return {"kind": "token", "user_id": grant["user_id"], "session_id": session_id,
                "token_id": grant["token_id"], "scopes": grant["scopes"],
                "token_expires_at": grant["expires_at"]}

    def token_alive(self, token_id):
        """Whether an API token still works (an open stream asks at every heartbeat). While
        the auth service cannot answer, it does: a stream outlives a restart of auth."""
        try:
            return self.worker_ctx.service.cluster.auth.api_token_alive(token_id)
        except Exception:  # noqa: BLE001 - asked again at the next heartbeat
            log.warning("could not check API token %s; keeping its stream", token_id, exc_info=True)
            return True

    def bind(self, user_id, session_id):
        self.worker_ctx.data["user_id"] = user_id
        self.worker_ctx.data["session_id"] = session_id
        context.bind(dict(context.current(), user_id=user_id, session_id=session_id))

    def start(self, request, session_id, user):
        token, row = self.store.create(session_id, user["id"], self.client_ip(request),
                                       request.headers.get("User-Agent"))
        self.bind(user["id"], session_id)
        return token, self.store.expires_at(row)

    def cookie(self, token, expires_at):
        return dump_cookie(COOKIE_NAME, token, expires=expires_at, path="/", httponly=True,
                           samesite="Strict", secure=self.secure_cookie)

    def cleared_cookie(self):
        return dump_cookie(COOKIE_NAME, "", max_age=0, path="/", httponly=True,
                           samesite="Strict", secure=self.secure_cookie)


class Sessions(DependencyProvider):
    """The gateway's session store on its ``DATABASE_URL``."""

    def setup(self):
        config = self.container.config
        self.engine = create_engine(config.get("DATABASE_URL", "sqlite:///var/gateway.db"))
        if config.get("DATABASE_CHECK_MIGRATED", True):
            from common import migrations

            migrations.require_head(HISTORY, self.engine)
        self.store = SessionStore(
            self.engine,
            idle_seconds=int(config.get("SESSION_IDLE_SECONDS", 1800)),
            absolute_seconds=int(config.get("SESSION_ABSOLUTE_SECONDS", 43200)),
        )
        self.secure_cookie = bool(config.get("SESSION_COOKIE_SECURE", True))
        self.trusted_proxies = trusted_proxy_count(config.get("TRUST_X_FORWARDED_FOR", False))

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return RequestSessions(self.store, worker_ctx, self.secure_cookie, self.trusted_proxies)
