"""API tokens without I/O: their format, scopes, which route needs which scope, and the
token aggregate's rules (expiry, revocation, allowed addresses, new-address facts)."""

from datetime import datetime, timedelta, timezone

import pytest

from common import scopes
from common.errors import Forbidden, Unauthenticated, ValidationFailed
from services.auth import domain
from gateway.access import ANY_SCOPE, SESSION_ONLY, check_token_may, required_scope

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def test_a_token_has_the_prefix_a_valid_checksum_and_is_never_the_same():
    tokens = {domain.new_api_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith("hpat_") and len(token) == domain.API_TOKEN_LENGTH
        assert domain.is_api_token(token)


def test_a_typo_or_a_look_alike_fails_the_checksum():
    token = domain.new_api_token()
    changed = token[:10] + ("a" if token[10] != "a" else "b") + token[11:]
    assert not domain.is_api_token(changed)
    assert not domain.is_api_token(token[:-1])
    assert not domain.is_api_token("hpat_" + "x" * 36)
    assert not domain.is_api_token(None)


def test_shorthands_expand_and_unknown_scopes_are_named():
    assert scopes.expand(["read"]) == [f"{area}:read" for area in scopes.AREAS]
    assert scopes.expand(["servers:write", "servers:write", "billing:read"]) == ["servers:write", "billing:read"]
    with pytest.raises(ValueError, match="servers:delete"):
        scopes.expand(["servers:delete"])


def test_write_includes_read_but_nothing_includes_the_special_scopes():
    assert scopes.grants(["servers:write"], "servers:read")
    assert not scopes.grants(["servers:read"], "servers:write")
    assert not scopes.grants(scopes.expand(["write", "read"]), "storage:secrets")
    assert not scopes.grants(scopes.expand(["write", "read"]), "tokens:write")
    assert scopes.not_granted(["servers:write", "tokens:write"], ["servers:write"]) == ["tokens:write"]


@pytest.mark.parametrize("method, path, need", [
    ("GET", "/api/v1/servers", "servers:read"),
    ("GET", "/api/v1/servers/export", "servers:read"),
    ("PATCH", "/api/v1/servers/abc", "servers:write"),
    ("POST", "/api/v1/servers/abc/actions", "servers:write"),
    ("GET", "/api/v1/operations/op1", ANY_SCOPE),
    ("GET", "/api/v1/catalog/instant", "orders:read"),
    ("POST", "/api/v1/orders", "orders:write"),
    ("GET", "/api/v1/storage/s3", "storage:read"),
    ("POST", "/api/v1/storage/s3/s1/buckets", "storage:write"),
    ("GET", "/api/v1/storage/s3/s1/credentials", "storage:secrets"),
    ("POST", "/api/v1/storage/s3/s1/credentials/rotate", "storage:secrets"),
    ("POST", "/api/v1/billing/topups", "billing:write"),
    ("GET", "/api/v1/support/tickets", "support:read"),
    ("GET", "/api/v1/notifications/stream", "notifications:read"),
    ("POST", "/api/v1/notifications/read", "notifications:write"),
    ("GET", "/api/v1/tokens", "tokens:write"),
    ("GET", "/api/v1/auth/session", ANY_SCOPE),
    ("POST", "/api/v1/auth/logout", SESSION_ONLY),
    ("POST", "/api/v1/auth/2fa/totp", SESSION_ONLY),
    ("GET", "/api/v1/something-new", SESSION_ONLY),
])
def test_each_route_needs_the_scope_of_its_area(method, path, need):
    assert required_scope(method, path) == need


def test_a_missing_scope_is_a_403_naming_it_and_session_only_routes_refuse_any_token():
    with pytest.raises(Forbidden) as refused:
        check_token_may(["servers:read"], "POST", "/api/v1/servers/abc/actions")
    assert "servers:write" in refused.value.message
    assert refused.value.to_dict()["required_scope"] == "servers:write"
    with pytest.raises(Forbidden, match="log in"):
        check_token_may(scopes.SCOPES, "POST", "/api/v1/auth/logout")
    check_token_may(["servers:write"], "GET", "/api/v1/servers")  # write includes read


def token(expires_at=NOW + timedelta(days=90), allowed_ips=()):
    events = domain.ApiToken.create("tok_1", "u1", "deploy bot", ["servers:write"], expires_at,
                                    list(allowed_ips), "hash", "abcd", NOW)
    aggregate = domain.ApiToken("tok_1")
    for version, event in enumerate(events, 1):
        aggregate.apply(type("Recorded", (), {"type": event.type, "data": event.data, "version": version}))
    return aggregate


def test_the_created_event_carries_no_secret_hash():
    events = domain.ApiToken.create("tok_1", "u1", "bot", ["servers:read"], None, [], "the-hash", "abcd", NOW)
    assert [event.type for event in events] == ["api_token_created", "api_token_secret_issued"]
    assert "the-hash" not in str(events[0].data)


def test_expiry_is_at_most_a_year_and_a_name_and_scope_are_required():
    with pytest.raises(ValidationFailed) as bad:
        domain.ApiToken.create("t", "u", "bot", ["servers:read"], NOW + timedelta(days=400), [], "h", "abcd", NOW)
    assert "expires_in_days" in bad.value.fields
    with pytest.raises(ValidationFailed) as bad:
        domain.ApiToken.create("t", "u", "  ", ["servers:read"], None, [], "h", "abcd", NOW)
    assert "name" in bad.value.fields
    with pytest.raises(ValidationFailed) as bad:
        domain.ApiToken.create("t", "u", "bot", [], None, [], "h", "abcd", NOW)
    assert "scopes" in bad.value.fields


def test_an_expired_or_revoked_token_or_one_used_from_elsewhere_is_refused():
    live = token(allowed_ips=["10.0.0.0/8"])
    live.check_usable(NOW, "10.1.2.3")
    with pytest.raises(Unauthenticated, match="address"):
        live.check_usable(NOW, "192.0.2.1")
    with pytest.raises(Unauthenticated, match="expired"):
        live.check_usable(NOW + timedelta(days=91), "10.1.2.3")
    live.apply(type("Recorded", (), {"type": "api_token_revoked", "data": {"at": NOW.isoformat()}, "version": 3}))
    with pytest.raises(Unauthenticated, match="revoked"):
        live.check_usable(NOW, "10.1.2.3")
    assert live.revoke(NOW) == []  # revoking again changes nothing


def test_a_token_without_expiry_never_expires():
    forever = token(expires_at=None)
    forever.check_usable(NOW + timedelta(days=3650), "192.0.2.1")
    assert forever.view(now=NOW)["expires_at"] is None


def test_allowed_addresses_are_normalised_and_bad_ones_named():
    assert domain.parse_allowed_addresses(["10.1.2.3", "2001:DB8::/32", "10.1.2.3"]) == ["10.1.2.3/32", "2001:db8::/32"]
    with pytest.raises(ValidationFailed) as bad:
        domain.parse_allowed_addresses(["10.0.0.0/33", "not-an-ip"])
    assert len(bad.value.fields["allowed_ips"]) == 2
    assert domain.address_allowed(["10.0.0.0/8"], "::ffff:10.9.9.9")  # IPv4 through an IPv6 socket


def test_a_new_address_is_a_fact_once():
    live = token()
    first = live.note_use("198.51.100.7", NOW)
    assert [event.type for event in first] == ["api_token_used_from_new_address"]
    assert first[0].data["first_use"] is True
    live.apply(type("Recorded", (), {"type": first[0].type, "data": first[0].data, "version": 3}))
    assert live.note_use("198.51.100.7", NOW) == []
    assert live.note_use("198.51.100.8", NOW)[0].data["first_use"] is False


def test_hostctl_summarises_a_tokens_scopes_from_the_apis_list():
    from gateway.routes.tokens import scope_descriptions
    from hostctl.commands.tokens import scope_summary

    listed = scope_descriptions()
    assert scope_summary(scopes.expand(["read", "write", "storage:secrets", "tokens:write"]), listed) == \
        "every area (read & write), storage:secrets, tokens:write"
    assert scope_summary(["servers:read", "servers:write", "billing:read"], listed) == "servers:write, billing:read"
