"""The gateway's hardening over real HTTP and a real broker (issue 20): commands honour an
``Idempotency-Key`` (the work done once however often the request is sent), security
headers on every answer, CORS off by default and an allow-list when set, and routes whose
``<id>`` never swallows a fixed word of a sibling route."""

import itertools

import eventlet
import pytest
import requests
import sqlalchemy as sa
from marshmallow import Schema, fields
from nameko.rpc import rpc

from common import context, migrations
from common.db import create_engine
from common.errors import Conflict, ServiceUnavailable, error_with_code
from common.service import CallContext
from deploy.components import migrate
from gateway.http import http, load_json
from gateway.idempotency import idempotent, idempotent_requests
from gateway.service import GatewayService
from gateway.sessions import SessionStore
from tests.support import free_port

CORS_ORIGIN = "https://console.example.com"


class Counter:
    """A service that counts how often each piece of work was really done."""

    name = "counter"
    call_context = CallContext()  # what every PanelService has
    done = []
    outages = itertools.count()

    @rpc
    def health(self):
        return {"service": "counter", "status": "ok"}

    @rpc
    def work(self, what, seconds=0):
        eventlet.sleep(seconds)
        Counter.done.append((what, context.current().get("idempotency_key")))
        return {"what": what, "times": sum(1 for done, _ in Counter.done if done == what)}

    @rpc
    def refuse(self, what):
        Counter.done.append((what, None))
        raise error_with_code(Conflict, "server_busy", "Another operation runs on this server.")

    @rpc
    def flaky(self, what):
        """Unavailable the first time it is asked, then does the work."""
        if next(Counter.outages) == 0:
            raise ServiceUnavailable("The BMC is not answering; try again.")
        Counter.done.append((what, None))
        return {"what": what}


class WorkSchema(Schema):
    what = fields.String(required=True)
    seconds = fields.Float()


class HardenedGateway(GatewayService):
    @http("POST", "/api/v1/probe/work")
    @idempotent
    def probe_work(self, request):
        self.sessions.authenticate(request)
        body = load_json(request, WorkSchema())
        return 202, self.cluster.counter.work(body["what"], body.get("seconds", 0))

    @http("POST", "/api/v1/probe/refuse")
    @idempotent
    def probe_refuse(self, request):
        self.sessions.authenticate(request)
        return self.cluster.counter.refuse(load_json(request, WorkSchema())["what"])

    @http("POST", "/api/v1/probe/flaky")
    @idempotent
    def probe_flaky(self, request):
        self.sessions.authenticate(request)
        return self.cluster.counter.flaky(load_json(request, WorkSchema())["what"])


@pytest.fixture
def sessions_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate("gateway", create_engine(url))
    return url


def start_gateway(start_service, sessions_db, **config):
    port = free_port()
    container = start_service(HardenedGateway, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", METRICS_PORT=0,
                              RPC_TIMEOUT_SECONDS=5, DATABASE_URL=sessions_db, **config)
    container.base_url = f"http://127.0.0.1:{port}"
    return container


@pytest.fixture
def gateway(start_service, sessions_db):
    Counter.done.clear()
    Counter.outages = itertools.count()
    start_service(Counter)
    return start_gateway(start_service, sessions_db)


def session_headers(sessions_db, user_id="user-1"):
    token, _ = SessionStore(create_engine(sessions_db)).create(f"session-{user_id}", user_id)
    return {"Authorization": f"Bearer {token}"}


def post(gateway, path, body, headers, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{gateway.base_url}/api/v1/probe/{path}", json=body, headers={**headers, **extra}, timeout=10)


# -- Idempotency-Key ------------------------------------------------------------------------

def test_a_command_sent_again_with_its_key_answers_the_first_answer_and_works_once(gateway, sessions_db):
    headers = session_headers(sessions_db)
    first = post(gateway, "work", {"what": "reboot"}, headers, key="k-1")
    again = post(gateway, "work", {"what": "reboot"}, headers, key="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() == {"what": "reboot", "times": 1}
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert Counter.done == [("reboot", "k-1")]  # the key reached the service in the call context
    assert post(gateway, "work", {"what": "reboot"}, headers).json()["times"] == 2  # no key: done again


def test_the_same_key_for_a_different_request_is_a_409(gateway, sessions_db):
    headers = session_headers(sessions_db)
    post(gateway, "work", {"what": "reboot"}, headers, key="k-2")
    other = post(gateway, "work", {"what": "power_off"}, headers, key="k-2")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert Counter.done == [("reboot", "k-2")]


def test_keys_belong_to_one_customer(gateway, sessions_db):
    post(gateway, "work", {"what": "reboot"}, session_headers(sessions_db, "user-1"), key="shared")
    theirs = post(gateway, "work", {"what": "reboot"}, session_headers(sessions_db, "user-2"), key="shared")
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs.headers
    assert len(Counter.done) == 2


def test_a_refusal_is_the_answer_to_that_request_and_is_answered_again(gateway, sessions_db):
    headers = session_headers(sessions_db)
    first = post(gateway, "refuse", {"what": "reboot"}, headers, key="k-3")
    again = post(gateway, "refuse", {"what": "reboot"}, headers, key="k-3")
    assert first.status_code == again.status_code == 409
    assert first.json()["error"] == again.json()["error"] == {
        "code": "server_busy", "message": "Another operation runs on this server."}
    assert len(Counter.done) == 1


def test_an_answer_that_says_nothing_happened_releases_the_key_for_the_retry(gateway, sessions_db):
    headers = session_headers(sessions_db)
    down = post(gateway, "flaky", {"what": "reboot"}, headers, key="k-4")
    assert down.status_code == 503 and Counter.done == []
    retried = post(gateway, "flaky", {"what": "reboot"}, headers, key="k-4")
    assert retried.status_code == 200 and retried.json() == {"what": "reboot"}
    assert Counter.done == [("reboot", None)]


def test_while_the_first_request_runs_the_same_key_waits_its_turn(gateway, sessions_db):
    headers = session_headers(sessions_db)
    slow = eventlet.spawn(post, gateway, "work", {"what": "reinstall", "seconds": 1.5}, headers, "k-5")
    while not gateway_claimed(sessions_db, "k-5"):
        eventlet.sleep(0.02)
    meanwhile = post(gateway, "work", {"what": "reinstall", "seconds": 1.5}, headers, key="k-5")
    assert meanwhile.status_code == 429 and meanwhile.json()["error"]["code"] == "idempotency_key_in_use"
    assert meanwhile.headers["Retry-After"] == "1"
    assert slow.wait().status_code == 202
    assert Counter.done == [("reinstall", "k-5")]


def gateway_claimed(sessions_db, key):
    with create_engine(sessions_db).connect() as conn:
        return conn.execute(sa.select(idempotent_requests.c.key).where(idempotent_requests.c.key == key)).first()


def test_a_bad_key_is_a_400_naming_the_header(gateway, sessions_db):
    answer = post(gateway, "work", {"what": "reboot"}, session_headers(sessions_db), key="x" * 201)
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["error"]["fields"]
    assert Counter.done == []


# -- security headers, CORS, routing --------------------------------------------------------

def test_api_answers_are_never_stored_by_caches_and_hsts_is_sent_when_set(start_service, sessions_db):
    gateway = start_gateway(start_service, sessions_db, HSTS_SECONDS=31536000)
    for answer in (requests.get(f"{gateway.base_url}/api/v1/servers", timeout=5),  # 401
                   requests.get(f"{gateway.base_url}/api/v1/auth/2fa/languages", timeout=5)):
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_without_a_setting_no_hsts_and_no_cross_origin_access(gateway):
    answer = requests.get(f"{gateway.base_url}/api/v1/auth/2fa/languages", headers={"Origin": CORS_ORIGIN}, timeout=5)
    assert "Strict-Transport-Security" not in answer.headers
    assert "Access-Control-Allow-Origin" not in answer.headers
    preflight = requests.options(f"{gateway.base_url}/api/v1/servers", timeout=5, headers={
        "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_allows_exactly_the_origins_listed(start_service, sessions_db):
    gateway = start_gateway(start_service, sessions_db, CORS_ORIGINS=f"{CORS_ORIGIN}, https://other.example")
    allowed = requests.get(f"{gateway.base_url}/api/v1/servers", headers={"Origin": CORS_ORIGIN}, timeout=5)
    assert allowed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert "Origin" in allowed.headers["Vary"] and "Retry-After" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers  # tokens, never the cookie
    foreign = requests.get(f"{gateway.base_url}/api/v1/servers", headers={"Origin": "https://evil.example"}, timeout=5)
    assert "Access-Control-Allow-Origin" not in foreign.headers
    preflight = requests.options(f"{gateway.base_url}/api/v1/servers/SRV-1", timeout=5, headers={
        "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, idempotency-key"})
    assert preflight.status_code == 204
    assert set(preflight.headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "PATCH"}
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_a_fixed_path_is_not_an_id_of_its_sibling_route(gateway):
    for method, path in (("PATCH", "/api/v1/servers/export"), ("DELETE", "/api/v1/storage/s3/locations")):
        answer = requests.request(method, f"{gateway.base_url}{path}", json={}, timeout=5)
        assert answer.status_code == 405, (method, path)
        assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD"}
