"""The gateway's HTTP layer: JSON everywhere, request ids, and the one error mapping.

- ``http`` is nameko's ``@http`` entrypoint with our server and handler: every answer is
  JSON (unknown routes and wrong methods included), carries ``X-Request-ID`` (the client's,
  when it sent a sane one), and the request id and a correlation id travel into every RPC
  the request makes, and so into every log line and event.
- ``error_response`` is the only place where exceptions become API.md's error envelope:
  ``PanelError`` subclasses keep their code and status, marshmallow's ``ValidationError``
  becomes 400 naming the fields, anything else is a logged 500.
- Access log: eventlet's own line per request (the full URL, query string included, and no
  request id) is off. ``ACCESS_LOG: true`` logs one structured line per request instead
  (``gateway.access``: method, path without the query string, status, duration, request
  id, client address); off by default, as most deployments log requests at the proxy in
  front and count them in the metrics (``panel_entrypoint_calls_total``).
"""

import contextvars
import functools
import json
import logging
import re
import time

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from marshmallow import ValidationError
from nameko.containers import WorkerContext
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule, UnicodeConverter
from werkzeug.wrappers import Request, Response

from common import context
from common.errors import (Conflict, Forbidden, NotFound, PanelError, PayloadTooLarge, RateLimited,
                           ServiceUnavailable, Unauthenticated, UnsupportedMediaType, ValidationFailed)
from common.rpc import SignatureShapes
from gateway.browser import CorsPolicy, add_security_headers, allowed_origins, cross_site_refusal
from gateway.sessions import COOKIE_NAME

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_TYPE = "application/json"
MAX_JSON_BYTES = 1 << 20


def request_id_of(request):
    """The client's X-Request-ID when it is sane, else a new one."""
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    return candidate if _SANE_REQUEST_ID.match(candidate) else context.new_id()


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, default=str), status=status, headers=headers, mimetype=JSON_TYPE)


def flat_field_errors(messages, prefix=""):
    """marshmallow's error messages as API.md's ``fields``: one list of reasons per field,
    a nested field named by its path (``{"attachments": {"0": [...]}}`` → ``attachments.0``)."""
    if isinstance(messages, (list, tuple)) and all(isinstance(message, str) for message in messages):
        return {prefix or "_schema": list(messages)}
    if not isinstance(messages, dict):
        return {prefix or "_schema": [str(messages)]}
    flat = {}
    for key, inner in messages.items():
        flat.update(flat_field_errors(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


# The one map from a domain error to the HTTP status the API answers it with (a subclass
# answers its nearest listed base's: ConcurrencyConflict is a Conflict, 409).
HTTP_STATUS = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def http_status_of(error):
    """The status a ``PanelError`` is answered with; 500 for one the map does not know. A
    refusal replayed from storage (``gateway.idempotency``) carries its first status."""
    replayed = getattr(error, "http_status", None)
    if replayed is not None:
        return replayed
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(exc, request_id):
    """Map an exception to API.md's error envelope."""
    headers = {}
    if isinstance(exc, ValidationError):
        exc = ValidationFailed("The request is invalid.", fields=flat_field_errors(exc.messages))
    if isinstance(exc, PanelError):
        error, status = exc.to_dict(), http_status_of(exc)
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, MethodNotAllowed):
        error, status = {"code": "method_not_allowed", "message": "This method is not allowed here."}, 405
        headers["Allow"] = ", ".join(exc.valid_methods or ())
    elif isinstance(exc, RouteNotFound):
        error, status = {"code": "not_found", "message": "No such resource."}, 404
    elif isinstance(exc, HTTPException):
        error, status = {"code": re.sub(r"\W+", "_", exc.name.lower()), "message": exc.description}, exc.code
    else:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        error, status = {"code": "internal_error", "message": "Something went wrong on our side."}, 500
    headers[REQUEST_ID_HEADER] = request_id
    return json_response({"error": error, "request_id": request_id}, status, headers)


@functools.cache
def shared_schema(schema_class):
    """One instance of a marshmallow schema class for every request: ``load`` keeps no
    state on the instance, and building one (its fields copied) costs more than loading
    a query string."""
    return schema_class()


def load_query(request, schema_class):
    """The query string loaded with ``schema_class``; bad fields: ``ValidationError`` (400)."""
    return shared_schema(schema_class).load(request.args.to_dict())


def load_json(request, schema):
    """The request body, parsed as JSON and loaded with ``schema`` (a marshmallow schema
    instance). Bad JSON or bad fields: ``ValidationFailed`` naming them."""
    if request.content_length and request.content_length > MAX_JSON_BYTES:
        raise ValidationFailed("The body is too large.", fields={"body": ["At most 1 MiB."]})
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("The body is not valid JSON.", fields={"body": ["Not valid JSON."]})
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", fields={"body": ["Must be an object."]})
    return schema.load(data)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(request):
    """The request's ``Idempotency-Key`` (None when absent): a command sent again with the
    same key answers what the first one did. Longer than 200 characters: 400 naming it."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed("Bad Idempotency-Key.", fields={IDEMPOTENCY_HEADER: ["1 to 200 characters."]})
    return key


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, answering unmatched routes and methods with JSON errors, and
    logging each request when ``ACCESS_LOG`` is on."""

    def __init__(self, server):
        super().__init__(server)
        config = server.container.config
        self.access_log = bool(config.get("ACCESS_LOG", False))
        self.hsts_seconds = int(config.get("HSTS_SECONDS", 0) or 0)
        self.cors = CorsPolicy(config.get("CORS_ORIGINS", ""))

    def __call__(self, environ, start_response):
        started = time.perf_counter() if self.access_log else 0.0
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        if self.cors.is_preflight(request):
            response = self.preflight(request, adapter)
        else:
            try:
                provider, values = adapter.match()
            except HTTPException as exc:
                response = error_response(exc, request_id_of(request))
            else:
                request.path_values = values
                response = provider.handle_request(request)
        self.cors.add_headers(request, response)
        add_security_headers(response, request.path, self.hsts_seconds)
        if self.access_log:
            access_log.info("%s %s %s", request.method, request.path, response.status_code, extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "request_id": response.headers.get(REQUEST_ID_HEADER),
                "client_ip": environ.get("REMOTE_ADDR"),
            })
        return response(environ, start_response)

    def preflight(self, request, adapter):
        """A CORS preflight from an allowed origin: 204 naming the path's methods (404 for
        a path that does not exist)."""
        methods = adapter.allowed_methods()
        if not methods:
            return error_response(RouteNotFound(), request_id_of(request))
        return Response(status=204, headers=self.cors.preflight_headers(request, set(methods) | {"OPTIONS"}))


def identifier_converter(reserved):
    """A converter for a ``<name>`` path part that takes any segment but ``reserved``."""
    words = "|".join(sorted(map(re.escape, reserved)))

    class Identifier(UnicodeConverter):
        def __init__(self, url_map, *args, **kwargs):
            super().__init__(url_map, *args, **kwargs)
            self.regex = rf"(?!(?:{words})$)[^/]+"

    return Identifier


def routes_without_shadowing(routes):
    """``(url, methods, endpoint)`` routes as werkzeug rules in which a ``<name>`` part
    never takes a fixed word of a sibling route: ``/servers/export`` is not the server
    called "export", so a PATCH there is a 405 whose ``Allow`` says GET (not the 404 of
    ``PATCH /servers/<id>``). Returns ``(rules, converters)`` for a ``Map``."""
    split = [(url.strip("/").split("/"), methods, endpoint) for url, methods, endpoint in routes]
    converters, rules = {}, []
    for parts, methods, endpoint in split:
        rewritten = []
        for index, part in enumerate(parts):
            match = re.fullmatch(r"<([a-zA-Z_]+)>", part)
            siblings = {other[index] for other, _, _ in split
                        if len(other) > index and other[:index] == parts[:index] and "<" not in other[index]}
            if match and siblings:
                name = "not_" + "_".join(sorted(re.sub(r"\W", "_", word) for word in siblings))
                converters[name] = identifier_converter(siblings)
                part = f"<{name}:{match.group(1)}>"
            rewritten.append(part)
        rules.append(Rule("/" + "/".join(rewritten), methods=methods, endpoint=endpoint))
    return rules, converters


class JsonWebServer(WebServer):
    """nameko's web server, with JSON errors, running each request's worker in the
    request's own greenthread.

    nameko's ``@http`` spawns one more greenthread per request for the worker and parks
    the request's greenthread on an event until the worker is done: two switches through
    the hub per request for nothing, as the request's greenthread only waits. Here the
    worker runs where the request is — the same ``WorkerContext``, dependency injection
    and worker lifecycle (nameko's ``ServiceContainer._run_worker``), listed among the
    container's workers (so ``kill`` stops it), refused once the container is being
    killed, and at most ``max_workers`` at a time (besides the pool's own workers: event
    handlers and timers). A graceful stop answers new requests 503 and waits for the ones
    under way (nameko's waits for its worker pool, which these are not in).

    Unlike a worker of nameko's pool, one whose dependency fails in ``worker_setup`` or
    ``worker_teardown`` makes that request a 500 instead of killing the whole gateway, and
    the call context it bound is discarded with it (each worker runs in a copy of the
    request greenthread's context, which keep-alive connections reuse)."""

    def make_url_map(self):
        """nameko's map of every ``@http`` route (``routes_without_shadowing``)."""
        routes = []
        for provider in self._providers:
            rule = provider.get_url_rule()
            routes.append((rule.rule, rule.methods, provider))
        rules, converters = routes_without_shadowing(routes)
        return Map(rules, converters=converters)

    def setup(self):
        super().setup()
        self._worker_slots = Semaphore(self.container.max_workers)
        self._running = 0
        self._idle_waiters = []
        self.draining = False

    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **options):
        server = super().get_wsgi_server(sock, wsgi_app, **options)
        # eventlet's access line (full URL, query string included) is off; its error
        # reports still go to the log. ``ACCESS_LOG`` turns on our structured line.
        server.log_output = False
        return server

    def run_worker(self, entrypoint, args, kwargs, context_data):
        """Run ``entrypoint``'s worker here; its result, or the exception it raised."""
        container = self.container
        outcome = []

        def keep(worker_ctx, result, exc_info):
            outcome.append((result, exc_info))
            return result, exc_info

        with self._worker_slots:
            if self.draining or container._being_killed:
                raise ServiceUnavailable("The gateway is shutting down; try again.")
            worker_ctx = WorkerContext(container, container.service_cls(), entrypoint, args, kwargs,
                                       data=context_data)
            container._worker_threads[worker_ctx] = eventlet.getcurrent()
            self._running += 1
            try:
                contextvars.copy_context().run(container._run_worker, worker_ctx, keep)
            finally:
                container._worker_threads.pop(worker_ctx, None)
                self._running -= 1
                if not self._running:
                    waiters, self._idle_waiters = self._idle_waiters, []
                    for waiter in waiters:
                        waiter.send()
        result, exc_info = outcome[0]
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        return result

    def wait_for_workers(self):
        """Return once no request's worker is running."""
        if self._running:
            waiter = Event()
            self._idle_waiters.append(waiter)
            waiter.wait()


class JsonHttpHandler(SignatureShapes, HttpRequestHandler):
    """``@http`` with JSON errors and request ids (see the module docstring)."""

    server = JsonWebServer()

    def __init__(self, method, url, **kwargs):
        # Refusals (4xx) are answers, not crashes: nameko must not log them as errors.
        kwargs.setdefault("expected_exceptions", (PanelError, ValidationError))
        super().__init__(method, url, **kwargs)

    def setup(self):
        super().setup()
        self.panel_origins = allowed_origins(self.container.config.get("PANEL_ORIGINS", ""))

    def handle_request(self, request):
        request.shallow = False
        request_id = request_id_of(request)
        context_data = {"request_id": request_id, "correlation_id": request_id}
        try:
            refusal = cross_site_refusal(request, COOKIE_NAME, self.panel_origins)
            if refusal is not None:
                raise refusal
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            result = self.server.run_worker(self, args, kwargs, context_data)
            response = self.response_from_result(result)
        except Exception as exc:
            response = error_response(exc, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def stop(self):
        self.server.draining = True
        super().stop()
        self.server.wait_for_workers()

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, headers, payload = 200, None, result
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, payload = result
            else:
                status, payload = result
        if status == 204:
            return Response(status=204, headers=headers)
        return json_response(payload, status, headers)


http = JsonHttpHandler.decorator
