"""Idempotent commands: an ``Idempotency-Key`` on any state-changing request (issue 20).

A client whose answer was lost (a timeout, a dropped connection, a gateway restart) sends
the same request again with the same key and gets the first answer back instead of the
work done twice — Stripe's model. A route opts in with ``@idempotent`` (under ``@http``);
the OpenAPI document then lists the header and its 409s.

- The first request with a key claims it for the customer (``idempotent_requests``, in the
  gateway's database, shared by every gateway instance), runs, and stores its answer: the
  status and JSON body, refusals (4xx) included, as they are the answer to that request.
- The same key again with the same method, path and body answers the stored answer, with
  ``Idempotent-Replayed: true``; with a different request, 409 ``idempotency_key_reused``;
  while the first is still running, 429 ``idempotency_key_in_use`` with ``Retry-After: 1``
  (clients that retry on 429 simply wait).
- An answer that says nothing happened for sure (5xx: a service down or timing out)
  releases the key, so the retry runs the command again. The key also travels in the call
  context (``common.context``): a service that starts an operation derives the operation's
  id from it, so a command whose answer was lost after the service accepted it finds that
  operation instead of starting a second one (``common.operations.Operations.id_for``).
- A claim left by a gateway that died mid-request is taken over after
  ``STALE_CLAIM_SECONDS``; keys are kept ``RETENTION`` (24 h) and pruned when the customer
  claims a new one.
"""

import functools
import hashlib
import json
from datetime import timedelta

import sqlalchemy as sa
from nameko.extensions import DependencyProvider

from common import context
from common.db import create_engine
from common.errors import Conflict, PanelError, RateLimited, error_with_code
from common.eventstore import as_utc, utcnow
from gateway.http import http_status_of, idempotency_key
from gateway.database import idempotent_requests

RETENTION = timedelta(hours=24)
STALE_CLAIM_SECONDS = 60
REPLAYED_HEADER = "Idempotent-Replayed"
RUNNING, DONE = "running", "done"

def fingerprint_of(request):
    """What makes two requests "the same": method, path and body."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def as_answer(result):
    """A route's result as ``(status, payload)``; None for a result that cannot be stored
    (a streamed ``Response``)."""
    if isinstance(result, tuple) and len(result) == 2:
        return result
    if isinstance(result, (dict, list)) or result is None:
        return 200, result
    return None


class IdempotencyStore:
    """The claims and stored answers (no HTTP here: ``run`` takes the request's parts)."""

    def __init__(self, engine, now=utcnow):
        self.engine = engine
        self.now = now

    def run(self, user_id, key, fingerprint, command):
        """``command()``'s answer, once per ``(user_id, key)``: ``(status, payload, replayed)``."""
        stored = self._claim(user_id, key, fingerprint)
        if stored is not None:
            return stored[0], stored[1], True
        try:
            result = command()
        except PanelError as refusal:
            status = http_status_of(refusal)
            if status >= 500 or isinstance(refusal, RateLimited):
                self._release(user_id, key)
            else:
                self._store(user_id, key, status, {"__error__": refusal.to_dict()})
            raise
        except BaseException:
            self._release(user_id, key)
            raise
        answer = as_answer(result)
        if answer is None:
            self._release(user_id, key)
            return None, result, False
        self._store(user_id, key, *answer)
        return answer[0], answer[1], False

    def _claim(self, user_id, key, fingerprint):
        """Claim the key (None) or the stored ``(status, payload)`` of its first request."""
        now = self.now()
        where = (idempotent_requests.c.user_id == user_id) & (idempotent_requests.c.key == key)
        with self.engine.begin() as conn:
            conn.execute(idempotent_requests.delete().where(
                (idempotent_requests.c.user_id == user_id) & (idempotent_requests.c.claimed_at < now - RETENTION)))
            row = conn.execute(sa.select(idempotent_requests).where(where)).mappings().first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(idempotent_requests.insert().values(
                            user_id=user_id, key=key, fingerprint=fingerprint, state=RUNNING, claimed_at=now))
                    return None
                except sa.exc.IntegrityError:  # another instance claimed it just now
                    row = conn.execute(sa.select(idempotent_requests).where(where)).mappings().first()
            if row["fingerprint"] != fingerprint:
                raise error_with_code(Conflict, "idempotency_key_reused",
                                      "This Idempotency-Key was used for a different request.")
            if row["state"] == DONE:
                return row["status"], json.loads(row["body"])
            if now - as_utc(row["claimed_at"]) < timedelta(seconds=STALE_CLAIM_SECONDS):
                raise error_with_code(RateLimited, "idempotency_key_in_use",
                                      "A request with this Idempotency-Key is still being processed; retry shortly.",
                                      retry_after=1)
            conn.execute(idempotent_requests.update().where(where).values(claimed_at=now))  # its gateway died
            return None

    def _store(self, user_id, key, status, payload):
        with self.engine.begin() as conn:
            conn.execute(idempotent_requests.update().where(
                (idempotent_requests.c.user_id == user_id) & (idempotent_requests.c.key == key)
            ).values(state=DONE, status=status, body=json.dumps(payload, default=str)))

    def _release(self, user_id, key):
        with self.engine.begin() as conn:
            conn.execute(idempotent_requests.delete().where(
                (idempotent_requests.c.user_id == user_id) & (idempotent_requests.c.key == key)
                & (idempotent_requests.c.state == RUNNING)))


class Idempotency(DependencyProvider):
    """The store on the gateway's ``DATABASE_URL`` (the sessions' database)."""

    def setup(self):
        self.engine = create_engine(self.container.config.get("DATABASE_URL", "sqlite:///var/gateway.db"))
        self.store = IdempotencyStore(self.engine)

    def stop(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return RequestIdempotency(self.store, worker_ctx)


class RequestIdempotency:
    """The store for one request's worker: binds the key into the call context."""

    def __init__(self, store, worker_ctx):
        self.store = store
        self.worker_ctx = worker_ctx

    def run(self, user_id, key, fingerprint, command):
        self.worker_ctx.data["idempotency_key"] = key
        context.bind(dict(context.current(), idempotency_key=key))
        return self.store.run(user_id, key, fingerprint, command)


def idempotent(route):
    """Make an ``@http`` route honour ``Idempotency-Key`` (see the module docstring). The
    route authenticates as usual; the customer is known first so keys are per customer."""

    @functools.wraps(route)
    def wrapper(self, request, *args, **kwargs):
        key = idempotency_key(request)
        if key is None:
            return route(self, request, *args, **kwargs)
        principal = self.sessions.authenticate(request)
        status, payload, replayed = self.idempotency.run(
            principal["user_id"], key, fingerprint_of(request), lambda: route(self, request, *args, **kwargs))
        if status is None:
            return payload
        if isinstance(payload, dict) and "__error__" in payload:
            raise StoredRefusal(status, payload["__error__"])
        headers = {REPLAYED_HEADER: "true"} if replayed else None
        return (status, headers, payload) if headers else (status, payload)

    wrapper.idempotent = True
    return wrapper


class StoredRefusal(PanelError):
    """The refusal the first request with this key got, answered again (with its status)."""

    is_refusal = True

    def __init__(self, status, body):
        super().__init__(body.get("message", ""), fields=body.get("fields"),
                         extra={k: v for k, v in body.items() if k not in ("message", "fields")})
        self.http_status = status
