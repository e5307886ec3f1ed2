"""The call context that travels with every RPC and event.

nameko copies ``worker_ctx.data`` into the headers of every RPC and event a worker sends,
and the receiving worker gets them back in its own ``worker_ctx.data``. We use these keys:

- ``request_id``: the id of the HTTP request that started the chain (X-Request-ID);
- ``correlation_id``: the id that ties every message of one business flow together;
- ``user_id`` / ``session_id``: the customer and session the gateway authenticated.
  Only the gateway sets them; services trust them and never read a user id from a body.
- ``causation_id``: in an event handler, the id of the event being handled: what the
  handler appends records it as its cause (DESIGN.md).
- ``idempotency_key``: the request's ``Idempotency-Key``, so that the operation a command
  starts has an id derived from it (``common.operations.Operations.id_for``).

This is the one list of them: the event metadata (``EVENT_METADATA_KEYS``) and the
headers of published events (``PUBLISHED_KEYS``) are parts of it.

``current`` exposes the values of the running worker to the log formatter.
"""

import contextvars
import uuid

CONTEXT_KEYS = ("request_id", "correlation_id", "user_id", "session_id", "causation_id", "idempotency_key")
# What an appended event records of the context it was appended in.
EVENT_METADATA_KEYS = ("user_id", "session_id", "correlation_id", "request_id", "causation_id")
# What a published event carries to its consumers as call context (its own id becomes
# their causation; a key of the request that caused it does not travel on).
PUBLISHED_KEYS = ("request_id", "correlation_id", "user_id", "session_id")

_current = contextvars.ContextVar("panel_call_context", default={})


def new_id():
    """A fresh random id for requests, correlations, events and operations."""
    return uuid.uuid4().hex


def current():
    """The call context of the running worker (empty outside one)."""
    return _current.get()


def bind(values):
    """Make ``values`` the current call context; returns a token for ``unbind``."""
    return _current.set({k: v for k, v in values.items() if k in CONTEXT_KEYS and v is not None})


def unbind(token):
    _current.reset(token)


def from_worker(worker_ctx):
    """The call context carried by a nameko worker, with a correlation id always present."""
    data = worker_ctx.data
    values = {key: data.get(key) for key in CONTEXT_KEYS}
    if not values["correlation_id"]:
        values["correlation_id"] = values["request_id"] or new_id()
        data["correlation_id"] = values["correlation_id"]
    return values
