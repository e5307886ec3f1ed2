"""Which scope an API token needs for each route (``common.scopes`` lists the scopes).

Sessions may do everything their customer may; API tokens only what their scopes allow.
The scope follows from the path and the method, in one table, so a new route in an area
is covered the day it is added: ``GET``/``HEAD`` need ``<area>:read``, any other method
``<area>:write``. A few routes need more (the S3 secret keys, token management), a few
any scope at all (who am I, an operation's status), and what no token may do — log out,
change the second factor — needs a session.
"""

import re

from common.errors import Forbidden, error_with_code
from common.scopes import grants

ANY_SCOPE = "any"  # any usable token will do
SESSION_ONLY = None  # no token, whatever its scopes

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# (pattern of the path, what it needs): the first match wins. An area name needs
# ``<area>:read`` or ``<area>:write`` by method; anything else is a fixed rule.
ROUTE_RULES = tuple((re.compile(pattern), need) for pattern, need in (
    (r"^/api/v1/auth/session$", ANY_SCOPE),
    (r"^/api/v1/auth/", SESSION_ONLY),
    (r"^/api/v1/operations/", ANY_SCOPE),
    (r"^/api/v1/(servers|locations|os-images)(/|$)", "servers"),
    (r"^/api/v1/(catalog|orders)(/|$)", "orders"),
    (r"^/api/v1/storage/s3/[^/]+/credentials(/|$)", "storage:secrets"),
    (r"^/api/v1/storage/", "storage"),
    (r"^/api/v1/billing/", "billing"),
    (r"^/api/v1/support/", "support"),
    (r"^/api/v1/notifications(/|$)", "notifications"),
    (r"^/api/v1/webhooks(/|$)", "webhooks"),
    (r"^/api/v1/tokens(/|$)", "tokens:write"),
))


def required_scope(method, path):
    """The scope a token needs for ``method path``: a scope name, ``ANY_SCOPE``, or
    ``SESSION_ONLY`` (also for paths no rule names: refuse what is not thought through)."""
    for pattern, need in ROUTE_RULES:
        if pattern.match(path):
            if need in (ANY_SCOPE, SESSION_ONLY) or ":" in need:
                return need
            return f"{need}:read" if method.upper() in READ_METHODS else f"{need}:write"
    return SESSION_ONLY


def check_token_may(scopes, method, path):
    """Raise ``forbidden`` (403, naming the scope) unless a token with ``scopes`` may
    call ``method path``."""
    need = required_scope(method, path)
    if need is SESSION_ONLY:
        raise error_with_code(Forbidden, "forbidden",
                              "API tokens cannot do this; log in with your password instead.")
    if need != ANY_SCOPE and not grants(scopes, need):
        raise error_with_code(Forbidden, "forbidden", f"This API token lacks the scope {need}.",
                              required_scope=need)
