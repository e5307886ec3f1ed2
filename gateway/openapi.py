"""The OpenAPI document, generated from the routes and the marshmallow schemas.

Every ``@http`` method of the gateway documents itself: its docstring ends with a YAML
block after ``---`` (apispec's convention) naming its responses and schemas. Routes are
read from the service class, so a route cannot exist without appearing here.
"""

import re
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring

from gateway.access import ANY_SCOPE, SESSION_ONLY, required_scope
from gateway.browser import SAFE_METHODS
from gateway.http import JsonHttpHandler
from gateway.schemas import SCHEMAS

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def openapi_path(url):
    """werkzeug ``/servers/<int:id>`` → OpenAPI ``/servers/{id}``."""
    return _CONVERTER.sub(r"{\1}", url)


def http_routes(service_cls):
    """(url, [methods], function) for every ``@http`` entrypoint of ``service_cls``."""
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    routes = []
    for name in dir(service_cls):
        function = getattr(service_cls, name)
        for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, JsonHttpHandler):
                routes.append((entrypoint.url, entrypoint.method.split(","), function))
    return sorted(routes, key=lambda route: route[0])


CROSS_SITE_REFUSAL = "a cross-site request with the session cookie (gateway/browser.py)"
MISSING_SCOPE = "the API token lacks the scope in `x-required-scope` (named in the message)"
API_TOKEN_SCHEME = {
    "type": "http", "scheme": "bearer", "bearerFormat": "hpat_…",
    "description": "An API token (POST /api/v1/tokens) as `Authorization: Bearer hpat_…`. Each operation "
                   "names the scope it needs in `x-required-scope` (`any`: any token); operations "
                   "without this scheme need a session.",
}


def error_response(description):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def forbidden(*reasons):
    return error_response("forbidden: " + "; or ".join(reasons))


def document_forbidden(operation, method, token_scope):
    """The 403 of an operation: the cross-site check refuses state changes, the token
    check a missing scope (unless the docstring says more)."""
    reasons = []
    if method.upper() not in SAFE_METHODS:  # every state change passes the cross-site check
        reasons.append(CROSS_SITE_REFUSAL)
    if token_scope not in (None, ANY_SCOPE):
        reasons.append(MISSING_SCOPE)
    if reasons:
        operation["responses"].setdefault(403, forbidden(*reasons))


def document_api_token(operation, method, url):
    """Add the API token scheme and the scope it needs to an operation that takes a
    session (``gateway.access`` decides which); the scope, or None when no token may."""
    security = operation.get("security") or []
    if not any("bearer" in requirement for requirement in security):
        return None
    need = required_scope(method, openapi_path(url))
    if need is SESSION_ONLY:
        return None
    operation["security"] = [*security, {"apiToken": []}]
    operation["x-required-scope"] = need
    responses = operation.setdefault("responses", {})
    if not ({401, "401"} & set(responses)):
        responses[401] = error_response("unauthenticated, or invalid_token (an expired, revoked or unknown API "
                                        "token, or one used from outside its allowed addresses)")
    if not ({429, "429"} & set(responses)):
        responses[429] = error_response("rate_limited, with Retry-After: too many unknown API tokens from this address")
    return need


IDEMPOTENCY_KEY = {
    "type": "string", "minLength": 1, "maxLength": 200,
    "description": "any unique text (a UUID): the command sent again with the same key answers what the first "
                   "one did instead of doing it twice",
}
REPLAYED = {"description": "`true` when this is the stored answer of an earlier request with the same key",
            "schema": {"type": "string", "enum": ["true"]}}
UNAVAILABLE = "unavailable: a service this operation needs is not answering (try again)"
INVALID_REQUEST = "validation_error: `fields` names each refused field (query, header or body)"


def referenced_schema(spec_schemas, body):
    """The registered schema of a JSON request body (None when it names none)."""
    ref = ((body.get("content") or {}).get("application/json") or {}).get("schema")
    if isinstance(ref, str):
        return spec_schemas.get(ref)
    if isinstance(ref, dict) and "$ref" in ref:
        return spec_schemas.get(ref["$ref"].rsplit("/", 1)[-1])
    return None


def document_common_answers(operation, url, registry):
    """What every operation of the API can answer besides what its docstring names: a 400
    when it reads a query, a header or a body (which is required when its schema has
    required fields), the 409 of a reused Idempotency-Key, and a 503 when a service it
    needs is down."""
    responses = operation["responses"]
    parameters = operation.get("parameters") or []
    body = operation.get("requestBody")
    for parameter in parameters:
        if parameter.get("name") == "Idempotency-Key":
            parameter["schema"] = dict(IDEMPOTENCY_KEY)
            responses.setdefault(409, error_response("idempotency_key_reused: the key was used for a different "
                                                     "request; or a conflict named by its code"))
            responses.setdefault(429, error_response("idempotency_key_in_use, with Retry-After: the first request "
                                                     "with this key is still running"))
            for status, response in responses.items():
                if str(status).startswith("2") and isinstance(response, dict):
                    response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED
    if body is not None:
        schema = referenced_schema(registry, body)
        if schema is not None and any(field.required for field in schema._declared_fields.values()):
            body.setdefault("required", True)
    if body is not None or any(p.get("in") in ("query", "header") for p in parameters):
        if not ({400, "400"} & set(responses)):
            responses[400] = error_response(INVALID_REQUEST)
    if url.startswith("/api/v1/") and url != "/api/v1/openapi.json" and not ({503, "503"} & set(responses)):
        responses[503] = error_response(UNAVAILABLE)


def build_spec(service_cls, version="1.0.0"):
    spec = APISpec(
        title="Hosting panel API",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "The gateway's HTTP API (see API.md). Errors use the Error schema."},
        servers=[{"url": "/"}],
    )
    registry = dict(SCHEMAS)  # every named schema (gateway.schemas)
    for name, schema in registry.items():
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "session"})
    spec.components.security_scheme("apiToken", API_TOKEN_SCHEME)
    used_ids = set()
    for url, methods, function in http_routes(service_cls):
        documented = load_operations_from_docstring(function.__doc__ or "")
        operations = {}
        for method in methods:
            operation = dict(documented.get(method.lower(), {}))
            if getattr(function, "idempotent", False):  # gateway.idempotency
                operation["parameters"] = [*operation.get("parameters", []),
                                           {"in": "header", "name": "Idempotency-Key", "schema": {}}]
            operation.setdefault("summary", (function.__doc__ or "").strip().split("\n")[0])
            operation.setdefault("responses", {"200": {"description": "OK"}})
            document_forbidden(operation, method, document_api_token(operation, method, url))
            document_common_answers(operation, url, registry)
            for status, response in operation["responses"].items():
                # OpenAPI requires a description on every response; the docstrings name one
                # only where it says more than the status does.
                if isinstance(response, dict) and "$ref" not in response:
                    response.setdefault("description", HTTPStatus(int(status)).phrase)
            operation_id = f"{function.__name__}_{method.lower()}"
            if operation_id in used_ids:  # one function on several paths (the panel's screens)
                operation_id += "_" + (re.sub(r"\W+", "_", url).strip("_") or "root")
            used_ids.add(operation_id)
            operation["operationId"] = operation_id
            operations[method.lower()] = operation
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _CONVERTER.findall(url)
        ]
        spec.path(path=openapi_path(url), operations=operations, parameters=parameters or None)
    document = spec.to_dict()
    for name, schema in registry.items():
        # Rules across fields (one of two required, not both) that marshmallow checks in a
        # @validates_schema: a schema class states them as JSON Schema in OPENAPI_RULES.
        document["components"]["schemas"][name].update(getattr(schema, "OPENAPI_RULES", {}))
    return document
