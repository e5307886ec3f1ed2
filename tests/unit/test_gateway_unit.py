"""Gateway pieces without a broker: error mapping, readiness with the broker down, and the
OpenAPI document."""

import json
import socket

from marshmallow import ValidationError
from nameko.testing.services import worker_factory
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from common.errors import (
    Conflict,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    error_with_code,
)
from gateway.http import error_response
from gateway.openapi import openapi_path
from gateway.service import GatewayService, openapi_document


def body_of(response):
    return json.loads(response.get_data())


def test_panel_errors_keep_their_code_and_status():
    for error, status, code in [
        (NotFound("gone"), 404, "not_found"),
        (error_with_code(Conflict, "out_of_stock", "No unit left."), 409, "out_of_stock"),
        (ServiceUnavailable("slow"), 503, "unavailable"),
    ]:
        response = error_response(error, "req-1")
        assert response.status_code == status
        assert body_of(response) == {"error": {"code": code, "message": error.message}, "request_id": "req-1"}
        assert response.headers["X-Request-ID"] == "req-1"


def test_rate_limited_answers_retry_after():
    response = error_response(RateLimited("Slow down.", retry_after=12), "r")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "12"


def test_marshmallow_errors_become_validation_error_naming_fields():
    response = error_response(ValidationError({"amount": ["Must be at least 20."]}), "r")
    assert response.status_code == 400
    assert body_of(response)["error"] == {
        "code": "validation_error", "message": "The request is invalid.",
        "fields": {"amount": ["Must be at least 20."]},
    }


def test_routing_errors_are_json():
    assert body_of(error_response(RouteNotFound(), "r"))["error"]["code"] == "not_found"
    wrong = error_response(MethodNotAllowed(valid_methods=["GET"]), "r")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"


def test_unexpected_errors_are_500_without_details():
    response = error_response(KeyError("secret internals"), "r")
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)


def test_readyz_reports_an_unreachable_broker():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    gateway = worker_factory(GatewayService, config={"AMQP_URI": f"amqp://guest:guest@127.0.0.1:{dead_port}/"})
    status, body = gateway.readyz(request=None)
    assert status == 503
    assert body["broker"] == "unreachable"
    assert body["missing"] == ["broker"]


def test_openapi_path_converts_werkzeug_converters():
    assert openapi_path("/servers/<int:server_id>/actions") == "/servers/{server_id}/actions"
    assert openapi_path("/storage/s3/<sid>/buckets/<name>") == "/storage/s3/{sid}/buckets/{name}"


def test_openapi_document_describes_the_gateway():
    document = openapi_document(GatewayService)
    assert document["info"]["title"] == "Hosting panel API"
    api_md_paths = {
        "/healthz", "/readyz", "/api/v1/openapi.json",
        "/api/v1/auth/login", "/api/v1/auth/2fa/verify", "/api/v1/auth/2fa/resend",
        "/api/v1/auth/2fa/languages", "/api/v1/auth/session", "/api/v1/auth/logout",
        "/api/v1/auth/password/forgot", "/api/v1/auth/password/reset",
    }
    assert api_md_paths <= set(document["paths"])
    assert document["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]
    ready = document["paths"]["/readyz"]["get"]
    assert ready["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Ready"}
    assert {"Error", "Ready", "Health", "Operation"} <= set(document["components"]["schemas"])


def test_the_openapi_document_is_valid_openapi_3_and_covers_every_area():
    """What front-end developers generate clients from: it must validate against the
    OpenAPI 3.0 specification itself, with every $ref resolving."""
    from openapi_spec_validator import validate

    document = openapi_document(GatewayService)
    validate(document)
    paths = set(document["paths"])
    assert {"/api/v1/catalog/instant", "/api/v1/catalog/stock", "/api/v1/orders", "/api/v1/orders/{order_id}",
            "/api/v1/billing/transactions", "/api/v1/storage/s3", "/api/v1/support/tickets"} <= paths
    assert any(p.startswith("/api/v1/storage/s3/{") and p.endswith("/usage") for p in paths)
    assert any(p.endswith("/attachments/{attachment_id}") for p in paths)


def test_nested_field_errors_are_named_by_their_path():
    answer = error_response(ValidationError({"attachments": {0: ["Field may not be null."]}, "subject": ["Required."]}),
                            "req-2")
    assert json.loads(answer.get_data())["error"]["fields"] == {
        "attachments.0": ["Field may not be null."], "subject": ["Required."]}


def test_an_identifier_never_takes_a_fixed_word_of_its_sibling_route():
    """PATCH /servers/export is a 405 that allows GET, not the server called "export"."""
    from werkzeug.routing import Map

    from gateway.http import routes_without_shadowing

    rules, converters = routes_without_shadowing([
        ("/api/v1/servers/export", {"GET"}, "export"), ("/api/v1/servers/<server_id>", {"GET", "PATCH"}, "server"),
        ("/api/v1/catalog/<kind>", {"GET"}, "catalog"), ("/instant", {"GET"}, "page")])
    urls = Map(rules, converters=converters).bind("panel.test")
    try:
        urls.match("/api/v1/servers/export", method="PATCH")
        raise AssertionError("PATCH /servers/export matched a route")
    except MethodNotAllowed as refusal:
        assert set(refusal.valid_methods) == {"GET", "HEAD"}
    assert urls.match("/api/v1/servers/SRV-1", method="PATCH") == ("server", {"server_id": "SRV-1"})
    assert urls.match("/api/v1/servers/exports", method="PATCH") == ("server", {"server_id": "exports"})
    # a word fixed elsewhere (the /instant page) is still a catalog kind
    assert urls.match("/api/v1/catalog/instant") == ("catalog", {"kind": "instant"})
