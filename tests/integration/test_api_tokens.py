"""API tokens through the gateway (issue 19): created with a session, used as a bearer
token, refused without the scope a route needs, expired, revoked, limited to addresses,
throttled when guessed; with the real auth service, two gateways and a real broker."""

import pytest
import requests

from tests.integration.test_auth import PASSWORD, panel  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("panel")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def session(panel):  # noqa: F811
    panel.register("carol", two_factor=False)
    answer = panel.post("/auth/login", {"username": "carol", "password": PASSWORD})
    return answer.json()["token"]


def delete(panel, path, token):  # noqa: F811
    return requests.delete(panel.url(path), headers=bearer(token), timeout=15)


def create(panel, session, **body):  # noqa: F811
    body.setdefault("name", "deploy bot")
    body.setdefault("scopes", ["servers:read"])
    return panel.post("/tokens", body, headers=bearer(session))


def test_a_token_is_shown_once_hashed_at_rest_and_works_on_both_gateways(panel, session):  # noqa: F811
    answer = create(panel, session, scopes=["read", "tokens:write"])
    assert answer.status_code == 201, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    created = answer.json()
    secret = created["token"]
    assert secret.startswith("hpat_") and created["hint"] == secret[-4:] and created["id"].startswith("tok_")
    assert created["status"] == "active" and created["expires_at"][:10] > created["created_at"][:10]
    for gateway in (0, 1):
        whoami = panel.get("/auth/session", gateway=gateway, headers=bearer(secret))
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["via"] == "api_token" and whoami.json()["token"]["id"] == created["id"]
    listed = panel.get("/tokens", headers=bearer(session)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert "token" not in listed["items"][0]
    assert listed["items"][0]["last_used_at"] and listed["items"][0]["last_used_ip"] == "127.0.0.1"
    assert {"name": "storage:secrets", "description": "read and rotate the secret keys of S3 storages"} in \
        listed["available_scopes"]
    # only a keyed hash is stored: the secret is nowhere in the auth database
    with open(panel.auth_container.config["DATABASE_URL"].removeprefix("sqlite:///"), "rb") as database:
        assert secret.encode() not in database.read()


def test_a_missing_scope_is_a_403_naming_it(panel, session):  # noqa: F811
    secret = create(panel, session, scopes=["servers:read"]).json()["token"]
    refused = panel.post("/servers/abc/actions", {"action": "reboot"}, headers=bearer(secret))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert refused.json()["error"]["required_scope"] == "servers:write"
    assert "servers:write" in refused.json()["error"]["message"]
    assert panel.get("/notifications", headers=bearer(secret)).json()["error"]["required_scope"] == "notifications:read"


def test_a_token_cannot_log_out_change_the_second_factor_or_grant_more_than_it_has(panel, session):  # noqa: F811
    secret = create(panel, session, scopes=["servers:write", "tokens:write"]).json()["token"]
    for path in ("/auth/logout", "/auth/logout/everywhere", "/auth/2fa/totp"):
        answer = panel.post(path, headers=bearer(secret))
        assert answer.status_code == 403 and "log in" in answer.json()["error"]["message"], path
    wider = create(panel, secret, scopes=["servers:write", "billing:write"])
    assert wider.status_code == 403 and "billing:write" in wider.json()["error"]["message"]
    narrower = create(panel, secret, name="read only", scopes=["servers:read"])
    assert narrower.status_code == 201, narrower.text


def test_without_tokens_write_a_token_cannot_manage_tokens(panel, session):  # noqa: F811
    secret = create(panel, session, scopes=["write"]).json()["token"]
    assert create(panel, secret).status_code == 403
    assert panel.get("/tokens", headers=bearer(secret)).status_code == 403


def test_bad_requests_name_the_field(panel, session):  # noqa: F811
    unknown = create(panel, session, scopes=["servers:delete"])
    assert unknown.status_code == 400 and "servers:delete" in unknown.json()["error"]["fields"]["scopes"][0]
    too_long = create(panel, session, expires_in_days=366)
    assert too_long.status_code == 400 and "expires_in_days" in too_long.json()["error"]["fields"]
    both = create(panel, session, expires_in_days=30, no_expiry=True)
    assert both.status_code == 400 and "expires_in_days" in both.json()["error"]["fields"]
    bad_ip = create(panel, session, allowed_ips=["10.0.0.0/33"])
    assert bad_ip.status_code == 400 and "allowed_ips" in bad_ip.json()["error"]["fields"]
    forever = create(panel, session, no_expiry=True)
    assert forever.status_code == 201 and forever.json()["expires_at"] is None


def test_a_revoked_token_stops_at_once_and_revoke_all_ends_every_one(panel, session):  # noqa: F811
    first = create(panel, session).json()
    second = create(panel, session, name="second").json()
    assert panel.get("/auth/session", headers=bearer(first["token"])).status_code == 200
    revoked = delete(panel, f"/tokens/{first['id']}", session)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    dead = panel.get("/auth/session", gateway=1, headers=bearer(first["token"]))
    assert dead.status_code == 401 and dead.json()["error"]["code"] == "invalid_token"
    assert "revoked" in dead.json()["error"]["message"]
    assert panel.get("/auth/session", headers=bearer(second["token"])).status_code == 200
    everything = delete(panel, "/tokens", session)
    assert everything.json() == {"revoked": 1}
    assert panel.get("/auth/session", headers=bearer(second["token"])).status_code == 401
    other = delete(panel, "/tokens/tok_000000000000", session)
    assert other.status_code == 404


def test_another_customers_token_is_a_404(panel, session):  # noqa: F811
    mine = create(panel, session).json()
    panel.register("dave", two_factor=False)
    dave = panel.post("/auth/login", {"username": "dave", "password": PASSWORD}).json()["token"]
    assert panel.get(f"/tokens/{mine['id']}", headers=bearer(dave)).status_code == 404
    assert panel.get("/tokens", headers=bearer(dave)).json()["items"] == []


def test_an_expired_token_is_a_401_saying_so(panel, session):  # noqa: F811
    secret = create(panel, session, expires_in_days=1).json()["token"]
    with panel.rpc() as auth:
        auth.advance_clock(86400 + 1)
    expired = panel.get("/auth/session", headers=bearer(secret))
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_a_token_used_from_outside_its_addresses_is_a_401(panel, session):  # noqa: F811
    secret = create(panel, session, allowed_ips=["192.0.2.0/24"]).json()["token"]
    outside = panel.get("/auth/session", headers=bearer(secret))
    assert outside.status_code == 401 and "address" in outside.json()["error"]["message"]
    inside = create(panel, session, name="local", allowed_ips=["127.0.0.0/8"]).json()["token"]
    assert panel.get("/auth/session", headers=bearer(inside)).status_code == 200


def test_guessing_tokens_is_throttled_per_address_while_real_tokens_keep_working(panel, session):  # noqa: F811
    from services.auth.domain import API_TOKEN_GUESSES_PER_WINDOW, new_api_token

    real = create(panel, session).json()["token"]
    answers = [panel.get("/auth/session", headers=bearer(new_api_token())).status_code
               for _ in range(API_TOKEN_GUESSES_PER_WINDOW + 1)]
    assert answers[:API_TOKEN_GUESSES_PER_WINDOW] == [401] * API_TOKEN_GUESSES_PER_WINDOW
    limited = panel.get("/auth/session", headers=bearer(new_api_token()))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert panel.get("/auth/session", headers=bearer(real)).status_code == 200  # same address


def test_the_token_events_are_published_without_the_secret(panel, session):  # noqa: F811
    from tests.support import store_of

    created = create(panel, session).json()
    store = store_of(panel.auth_container)
    events = store.load_stream(f"apitoken-{created['id']}")
    assert [event.type for event in events] == ["api_token_created", "api_token_secret_issued"]
    panel.get("/auth/session", headers=bearer(created["token"]))
    panel.get("/auth/session", headers=bearer(created["token"]))
    events = store.load_stream(f"apitoken-{created['id']}")
    assert [event.type for event in events][2:] == ["api_token_used_from_new_address"]  # once
    assert events[2].data["client_ip"] == "127.0.0.1" and events[2].data["first_use"] is True
    from common.contracts import integration_types

    published = integration_types("auth")
    assert "api_token_created" in published and "api_token_secret_issued" not in published
