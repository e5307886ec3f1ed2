"""API token scopes: the one list of what a token may be allowed to do.

A scope is ``<area>:read`` or ``<area>:write`` (write includes read) for each area of the
API, plus two that nothing else includes: ``storage:secrets`` (read and rotate S3 secret
keys) and ``tokens:write`` (create and revoke API tokens, never with more scopes than the
token it is done with). Changing the password or the second factor, and logging out,
need a session: no scope allows them.

Requests may name the shorthands ``read`` (every ``:read`` scope) and ``write`` (every
``:write`` scope); both expand before they are stored, so a token lists exactly what it
may do.
"""

# Every API token starts with this (the gateway tells them from session tokens by it;
# secret scanners find leaked ones by it).
API_TOKEN_PREFIX = "hpat_"

AREAS = ("servers", "orders", "storage", "billing", "support", "notifications", "webhooks")
SPECIAL_SCOPES = {
    "storage:secrets": "read and rotate the secret keys of S3 storages",
    "tokens:write": "create and revoke API tokens (never with more scopes than its own)",
}
SCOPES = tuple(f"{area}:{access}" for area in AREAS for access in ("read", "write")) + tuple(SPECIAL_SCOPES)
SHORTHANDS = {
    "read": tuple(f"{area}:read" for area in AREAS),
    "write": tuple(f"{area}:write" for area in AREAS),
}


def expand(requested):
    """The stored form of requested scopes: shorthands expanded, duplicates dropped,
    in ``SCOPES`` order. Unknown names raise ``ValueError`` naming them."""
    wanted = set()
    unknown = []
    for scope in requested:
        if scope in SHORTHANDS:
            wanted.update(SHORTHANDS[scope])
        elif scope in SCOPES:
            wanted.add(scope)
        else:
            unknown.append(scope)
    if unknown:
        raise ValueError(f"Unknown scope: {', '.join(map(str, unknown))}.")
    return [scope for scope in SCOPES if scope in wanted]


def grants(scopes, required):
    """Whether a token with ``scopes`` may do what ``required`` names."""
    if required in scopes:
        return True
    area, _, access = required.partition(":")
    return access == "read" and f"{area}:write" in scopes


def not_granted(requested, scopes):
    """The scopes of ``requested`` that ``scopes`` does not grant (a token creating a
    token cannot hand out more than it has)."""
    return [scope for scope in requested if not grants(scopes, scope)]
