"""The gateway over real HTTP and a real broker: JSON errors everywhere, typed service
errors mapped once, request ids carried into services and logs, RPC time limits, /readyz,
the OpenAPI document and metrics."""

import io
import json
import logging

import eventlet
import pytest
import requests
from marshmallow import Schema, fields, validate
from nameko.rpc import rpc

from common import context, migrations
from common.db import create_engine
from common.errors import Conflict, NotFound, RateLimited, error_with_code
from common.logging import JsonFormatter
from common.service import CallContext
from deploy.components import migrate
from gateway.http import JsonWebServer, http, load_json
from gateway.service import GatewayService
from tests.support import free_port, wait_for


class Lab:
    name = "lab"
    call_context = CallContext()  # what every PanelService has

    @rpc
    def health(self):
        return {"service": "lab", "status": "ok"}

    @rpc
    def whoami(self):
        logging.getLogger("lab").info("whoami called")
        return dict(context.current())

    @rpc
    def missing(self):
        raise NotFound("no such server")

    @rpc
    def broke(self):
        raise error_with_code(Conflict, "insufficient_funds", "Your balance is too low.")

    @rpc
    def throttled(self):
        raise RateLimited("Too many attempts.", retry_after=30)

    @rpc
    def crashes(self):
        raise ValueError("internal detail that must not leak")

    @rpc
    def pause(self, seconds):
        eventlet.sleep(seconds)
        return {"paused": seconds}


class Slowpoke:
    name = "slowpoke"

    @rpc
    def health(self):
        eventlet.sleep(10)


class EchoSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=20))
    count = fields.Integer(load_default=1)


class ProbeGateway(GatewayService):
    """The real gateway plus a few routes that exercise its machinery."""

    @http("GET", "/probe/context")
    def probe_context(self, request):
        return self.cluster.lab.whoami()

    @http("GET", "/probe/<name>")
    def probe_error(self, request, name):
        return getattr(self.cluster.lab, name)()

    @http("POST", "/probe/echo")
    def probe_echo(self, request):
        return 201, load_json(request, EchoSchema())

    @http("GET", "/probe/slow")
    def probe_slow(self, request):
        return self.cluster.slowpoke.health()

    @http("GET", "/probe/pause")
    def probe_pause(self, request):
        return self.cluster.lab.pause.call(2.5, timeout=5)



@pytest.fixture
def sessions_db(tmp_path):
    """A migrated sessions database of the gateway's own (never the working tree's var/)."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate("gateway", create_engine(url))
    return url


@pytest.fixture
def gateway(start_service, sessions_db):
    port = free_port()
    container = start_service(
        ProbeGateway, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", METRICS_PORT=0,
        RPC_TIMEOUT_SECONDS=1, READY_SERVICES=["lab"], DATABASE_URL=sessions_db,
    )
    container.base_url = f"http://127.0.0.1:{port}"
    return container


@pytest.fixture
def lab(start_service):
    return start_service(Lab)


class CapturedRecords(logging.Handler):
    """Every log record of the process at INFO and above, while installed."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc_info):
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)


def test_unknown_routes_and_wrong_methods_answer_json_errors(gateway):
    missing = requests.get(f"{gateway.base_url}/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.json()["request_id"] == missing.headers["X-Request-ID"]

    wrong = requests.delete(f"{gateway.base_url}/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


def test_request_id_is_echoed_and_carried_into_the_service(gateway, lab):
    answer = requests.get(f"{gateway.base_url}/probe/context", headers={"X-Request-ID": "req-abc-123"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "req-abc-123"
    seen_by_service = answer.json()
    assert seen_by_service["request_id"] == "req-abc-123"
    assert seen_by_service["correlation_id"] == "req-abc-123"


def test_an_insane_request_id_is_replaced(gateway, lab):
    answer = requests.get(f"{gateway.base_url}/healthz", headers={"X-Request-ID": "bad id\twith junk" * 20})
    assert answer.headers["X-Request-ID"] != "bad id\twith junk" * 20
    assert len(answer.headers["X-Request-ID"]) == 32


def test_service_logs_carry_the_request_id_as_json(gateway, lab):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("lab"))
    logger = logging.getLogger("lab")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        requests.get(f"{gateway.base_url}/probe/context", headers={"X-Request-ID": "req-log-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["message"] == "whoami called"
    assert line["request_id"] == "req-log-1"
    assert line["correlation_id"] == "req-log-1"
    assert line["service"] == "lab"


def test_requests_are_not_logged_by_default_and_never_with_their_query_string(gateway, lab):
    with CapturedRecords() as captured:
        answer = requests.get(f"{gateway.base_url}/probe/context?token=s3cret-in-url")
    assert answer.status_code == 200
    assert [r for r in captured.records if r.name in ("gateway.access", "nameko.web.server")] == []
    assert not any("s3cret-in-url" in r.getMessage() for r in captured.records)


def test_access_log_when_turned_on_is_one_json_line_per_request(start_service, sessions_db, lab):
    port = free_port()
    start_service(ProbeGateway, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", METRICS_PORT=0, DATABASE_URL=sessions_db,
                  ACCESS_LOG=True)
    with CapturedRecords() as captured:
        found = requests.get(f"http://127.0.0.1:{port}/probe/context?token=s3cret-in-url",
                             headers={"X-Request-ID": "req-access-1"})
        missing = requests.get(f"http://127.0.0.1:{port}/nothing-here")
    assert (found.status_code, missing.status_code) == (200, 404)
    lines = [json.loads(JsonFormatter("gateway").format(r)) for r in captured.records if r.name == "gateway.access"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/probe/context", 200), ("GET", "/nothing-here", 404)]
    assert lines[0]["request_id"] == "req-access-1"
    assert lines[1]["request_id"] == missing.headers["X-Request-ID"]
    assert all(line["duration_ms"] > 0 and line["client_ip"] == "127.0.0.1" for line in lines)
    assert not any("s3cret-in-url" in json.dumps(line) for line in lines)


@pytest.mark.parametrize("name, status, code", [
    ("missing", 404, "not_found"),
    ("broke", 409, "insufficient_funds"),
    ("throttled", 429, "rate_limited"),
])
def test_typed_service_errors_become_the_api_error_envelope(gateway, lab, name, status, code):
    answer = requests.get(f"{gateway.base_url}/probe/{name}")
    assert answer.status_code == status
    body = answer.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == answer.headers["X-Request-ID"]
    if status == 429:
        assert answer.headers["Retry-After"] == "30"


def test_an_unexpected_service_error_is_a_500_without_internals(gateway, lab):
    answer = requests.get(f"{gateway.base_url}/probe/crashes")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "internal detail" not in answer.text


def test_validation_errors_name_the_fields(gateway):
    url = f"{gateway.base_url}/probe/echo"
    bad_fields = requests.post(url, json={"name": "", "count": "many", "extra": 1})
    assert bad_fields.status_code == 400
    error = bad_fields.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"name", "count", "extra"}

    not_json = requests.post(url, data=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert not_json.json()["error"]["fields"] == {"body": ["Not valid JSON."]}

    not_object = requests.post(url, json=[1, 2])
    assert not_object.status_code == 400

    good = requests.post(url, json={"name": "x"})
    assert good.status_code == 201
    assert good.json() == {"name": "x", "count": 1}


def test_a_service_that_does_not_answer_in_time_is_a_503_not_a_hang(gateway, start_service):
    start_service(Slowpoke)
    answer = requests.get(f"{gateway.base_url}/probe/slow", timeout=8)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "unavailable"
    assert answer.elapsed.total_seconds() < 5


def test_a_service_that_never_started_is_a_503(gateway):
    answer = requests.get(f"{gateway.base_url}/probe/context", timeout=8)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "unavailable"


def test_readyz_is_200_when_every_service_answers(gateway, lab):
    answer = requests.get(f"{gateway.base_url}/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "broker": "ok", "services": {"lab": "ok"}, "missing": []}


def test_readyz_is_503_naming_the_services_that_do_not_answer(start_service, lab, sessions_db):
    start_service(Slowpoke)
    port = free_port()
    start_service(ProbeGateway, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", METRICS_PORT="off",
                  READY_SERVICES=["lab", "slowpoke", "ghost"], DATABASE_URL=sessions_db)
    answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=8)
    assert answer.status_code == 503
    body = answer.json()
    assert body["missing"] == ["ghost", "slowpoke"]
    assert body["services"]["lab"] == "ok"
    assert answer.elapsed.total_seconds() < 4  # checked in parallel, 2 s each at most


def test_openapi_document_lists_every_route_with_its_schemas(gateway):
    document = requests.get(f"{gateway.base_url}/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/healthz", "/readyz", "/api/v1/openapi.json", "/probe/{name}"} <= set(document["paths"])
    assert "Error" in document["components"]["schemas"]
    assert document["paths"]["/readyz"]["get"]["responses"]["503"]


def test_metrics_count_entrypoint_calls_by_outcome(gateway, lab):
    requests.get(f"{gateway.base_url}/healthz")
    requests.get(f"{gateway.base_url}/probe/missing")
    from common.metrics import Metrics

    port = next(d for d in gateway.dependencies if isinstance(d, Metrics)).port
    text = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/metrics").text, message="metrics")
    assert 'panel_entrypoint_calls_total{entrypoint="healthz",kind="http",outcome="ok",service="gateway"} 1.0' in text
    assert 'panel_entrypoint_calls_total{entrypoint="probe_error",kind="http",outcome="rejected",service="gateway"} 1.0' in text
    assert "panel_entrypoint_duration_seconds_bucket" in text


def test_a_graceful_stop_answers_the_requests_under_way(gateway, lab):
    """Routes run their worker in the request's own greenthread: stopping the gateway
    still waits for them (and keeps the RPC client up until they are answered), and
    requests that arrive meanwhile are refused with a 503 instead of half-run."""
    server = gateway.shared_extensions[JsonWebServer]
    under_way = eventlet.spawn(requests.get, f"{gateway.base_url}/probe/pause", timeout=10)
    wait_for(lambda: server._running == 1, message="the request to be under way")
    stopping = eventlet.spawn(gateway.stop)
    wait_for(lambda: server.draining, message="the gateway to begin its stop")
    late = requests.get(f"{gateway.base_url}/healthz", timeout=10)
    assert late.status_code == 503  # no new work once stopping; a load balancer retries elsewhere
    assert late.json()["error"]["code"] == "unavailable"
    answer = under_way.wait()
    stopping.wait()
    assert answer.status_code == 200
    assert answer.json() == {"paused": 2.5}
