"""The gateway serving the customer panel over real HTTP (gateway/routes/panel.py,
gateway/browser.py): every screen's address answers the built index.html under the
panel's CSP, assets are cached for good and cannot leave their folder, API answers get
the API's CSP, a cross-site change with the session cookie is refused while the same
change from the panel's own origin goes through, and an unbuilt panel is a plain 503."""

import http.client

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from common.db import create_engine
from deploy.components import migrate
from gateway.browser import API_CSP, PANEL_CSP
from gateway.routes.panel import ASSET_CACHE
from gateway.service import GatewayService
from services.auth.service import AuthService
from tests.support import free_port, origin_header

PASSWORD = "canary-password-A1"
INDEX = b'<!doctype html><title>Panel</title><script type="module" src="/assets/app-abc.js"></script>'
SCRIPT = b"console.log('panel')"
EVIL = {"Origin": "https://evil.example"}


@pytest.fixture
def dist(tmp_path):
    """A built panel: index.html, one hashed asset, and a file beside assets/ that must stay
    out of reach."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_bytes(INDEX)
    (folder / "assets" / "app-abc.js").write_bytes(SCRIPT)
    (folder / "secret").write_text("not an asset")
    return folder


@pytest.fixture
def sessions_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate("gateway", create_engine(url))
    return url


def start_gateway(start_service, sessions_db, dist_dir):
    port = free_port()
    start_service(GatewayService, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", DATABASE_URL=sessions_db,
                  METRICS_PORT="off", SESSION_COOKIE_SECURE=False, PANEL_DIST_DIR=str(dist_dir))
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def gateway(start_service, sessions_db, dist):
    return start_gateway(start_service, sessions_db, dist)


@pytest.fixture
def customer_cookie(start_service, amqp_uri, tmp_path, standins, gateway):
    """The session cookie of a customer logged in through the gateway (no 2FA)."""
    auth_url = f"sqlite:///{tmp_path / 'auth.db'}"
    migrate("auth", create_engine(auth_url))
    start_service(AuthService, DATABASE_URL=auth_url, METRICS_PORT="off", AUTH_SECRET_KEY="k" * 48,
                  ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=8192, **standins.config)
    with ServiceRpcProxy("auth", {"AMQP_URI": amqp_uri}) as rpc:
        rpc.register_user("carol", PASSWORD, "carol@example.com", "+31612345678", False)
    login = requests.post(f"{gateway}/api/v1/auth/login", json={"username": "carol", "password": PASSWORD},
                          timeout=15)
    assert login.status_code == 200, login.text
    return {"session": login.cookies["session"]}


def assert_panel_html(answer):
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.content == INDEX
    policy = answer.headers["Content-Security-Policy"]
    assert policy == PANEL_CSP
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/", "/login", "/servers", "/servers/123", "/storage/7", "/support/42",
                                  "/billing", "/reset-password"])
def test_every_screen_address_answers_the_panel_under_its_csp(gateway, path):
    assert_panel_html(requests.get(f"{gateway}{path}", timeout=10))


def test_assets_are_served_with_their_type_and_cached_for_good(gateway):
    answer = requests.get(f"{gateway}/assets/app-abc.js", timeout=10)
    assert answer.status_code == 200 and answer.content == SCRIPT
    assert answer.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert answer.headers["Cache-Control"] == ASSET_CACHE
    assert "immutable" in ASSET_CACHE
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    missing = requests.get(f"{gateway}/assets/app-old.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/assets/../secret", "/assets/..%2Fsecret", "/assets/%2e%2e/secret"])
def test_no_asset_path_leaves_the_assets_folder(gateway, path):
    host = gateway.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=10)  # sends the path as written
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status == 404
    assert b"not an asset" not in body


def test_api_answers_carry_the_api_csp(gateway):
    for answer in (requests.get(f"{gateway}/healthz", timeout=10),
                   requests.get(f"{gateway}/api/v1/auth/session", timeout=10),
                   requests.get(f"{gateway}/api/v1/no/such/route", timeout=10)):
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.headers["Content-Security-Policy"] == API_CSP
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_cross_site_change_with_the_cookie_is_refused_and_the_session_lives_on(gateway, customer_cookie):
    api = f"{gateway}/api/v1"
    forged = requests.post(f"{api}/auth/logout", cookies=customer_cookie, headers=EVIL, timeout=10)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
    no_origin = requests.post(f"{api}/auth/logout", cookies=customer_cookie, timeout=10)
    assert no_origin.status_code == 403
    assert requests.get(f"{api}/auth/session", cookies=customer_cookie, timeout=10).status_code == 200

    own = requests.post(f"{api}/auth/logout", cookies=customer_cookie, headers=origin_header(gateway), timeout=10)
    assert own.status_code == 204
    assert requests.get(f"{api}/auth/session", cookies=customer_cookie, timeout=10).status_code == 401


def test_a_foreign_page_cannot_log_the_browser_in_either(gateway):
    """Login CSRF: no cookie yet, a foreign Origin."""
    answer = requests.post(f"{gateway}/api/v1/auth/login", json={"username": "carol", "password": PASSWORD},
                           headers=EVIL, timeout=10)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"


def test_an_unbuilt_panel_answers_503_saying_how_to_build_it(start_service, sessions_db, tmp_path):
    gateway = start_gateway(start_service, sessions_db, tmp_path / "never-built")
    answer = requests.get(f"{gateway}/servers", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "unavailable"
    assert "make setup" in answer.json()["error"]["message"]
    assert requests.get(f"{gateway}/healthz", timeout=10).status_code == 200  # the API does not depend on it


def test_the_openapi_document_lists_the_panel_routes(gateway):
    document = requests.get(f"{gateway}/api/v1/openapi.json", timeout=10).json()
    assert {"/", "/servers/{server_id}", "/assets/{name}"} <= set(document["paths"])
    assert document["paths"]["/"]["get"]["tags"] == ["panel"]
    assert "503" in document["paths"]["/"]["get"]["responses"]
