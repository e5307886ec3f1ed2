"""What the HTTP stand-ins share: a thread-safe inbox, per-provider failure modes, a tiny
JSON web app on werkzeug, and ``serve`` (threaded server, one "listening" line, clean stop on
SIGTERM/SIGINT).

Nothing here logs a request body: the stand-ins receive one-time codes.
"""

import hmac
import json
import os
import signal
import threading
import uuid
from datetime import datetime, timezone

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

MODES = ("ok", "fail", "slow")
DEFAULT_SLOW_DELAY = 10.0


def now_iso():
    return datetime.now(timezone.utc).isoformat()


def new_id():
    return uuid.uuid4().hex


def same_secret(given, expected):
    """Constant-time comparison of two secrets (either may be None)."""
    return hmac.compare_digest((given or "").encode(), (expected or "").encode())


def setting(name, default):
    """A stand-in setting from the environment (credentials), with its dev default."""
    return os.environ.get(name, default)


def json_response(data, status=200, headers=None):
    return Response(json.dumps(data), status=status, headers=headers, mimetype="application/json")


def empty_response(status=204):
    return Response(status=status)


class BadRequest(Exception):
    """Raised by a handler to answer 400 with a JSON body of its choice."""

    def __init__(self, body, status=400):
        super().__init__(body)
        self.body = body
        self.status = status


class Inbox:
    """What a stand-in received, oldest first. Records are dicts with at least ``to``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records = []

    def add(self, record):
        with self._lock:
            self._records.append(record)

    def list(self, to=None, provider=None):
        with self._lock:
            records = list(self._records)
        if to is not None:
            records = [r for r in records if to == r["to"] or (isinstance(r["to"], list) and to in r["to"])]
        if provider is not None:
            records = [r for r in records if r.get("provider") == provider]
        return records

    def clear(self):
        with self._lock:
            self._records.clear()


class Controls:
    """The failure mode of each provider a stand-in plays: ok, fail (503) or slow."""

    def __init__(self, providers):
        self._lock = threading.Lock()
        self._modes = {name: {"mode": "ok", "delay": DEFAULT_SLOW_DELAY} for name in providers}

    def get(self, provider):
        with self._lock:
            return dict(self._modes[provider])

    def set(self, provider, mode, delay=None):
        if provider not in self._modes:
            raise BadRequest({"error": f"unknown provider {provider!r}", "providers": list(self._modes)})
        if mode not in MODES:
            raise BadRequest({"error": f"unknown mode {mode!r}", "modes": list(MODES)})
        try:
            delay = DEFAULT_SLOW_DELAY if delay is None else float(delay)
        except (TypeError, ValueError):
            raise BadRequest({"error": "delay must be a number of seconds"}) from None
        if delay < 0:
            raise BadRequest({"error": "delay must not be negative"})
        with self._lock:
            self._modes[provider] = {"mode": mode, "delay": delay}

    def as_dict(self):
        with self._lock:
            return {name: dict(state) for name, state in self._modes.items()}


def read_json(request):
    """The request's JSON object, or a 400."""
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise BadRequest({"error": "the body is not valid JSON"}) from None
    if not isinstance(body, dict):
        raise BadRequest({"error": "the body must be a JSON object"})
    return body


class StandinApp:
    """A WSGI app with an inbox, provider controls and the routes of the provider APIs.

    Subclasses set ``name`` and ``providers`` and return their provider routes from
    ``provider_rules()`` (werkzeug ``Rule`` objects whose endpoint is a method name).
    """

    name = "stand-in"
    providers = ()

    def __init__(self):
        self.inbox = Inbox()
        self.controls = Controls(self.providers)
        common = [
            Rule("/messages", methods=["GET"], endpoint="list_messages"),
            Rule("/messages", methods=["DELETE"], endpoint="clear_messages"),
        ]
        if self.providers:
            common += [
                Rule("/control", methods=["GET"], endpoint="show_control"),
                Rule("/control", methods=["POST"], endpoint="set_control"),
            ]
        self.url_map = Map(common + list(self.provider_rules()))

    def provider_rules(self):
        return []

    # The inbox and control endpoints.
    def list_messages(self, request):
        return json_response(
            self.inbox.list(to=request.args.get("to"), provider=request.args.get("provider"))
        )

    def clear_messages(self, request):
        self.inbox.clear()
        return empty_response()

    def show_control(self, request):
        return json_response(self.controls.as_dict())

    def set_control(self, request):
        body = read_json(request)
        self.controls.set(body.get("provider"), body.get("mode"), body.get("delay"))
        return json_response(self.controls.as_dict())

    def misbehave(self, provider):
        """Apply the provider's mode: a 503 response when failing, a pause when slow."""
        state = self.controls.get(provider)
        if state["mode"] == "fail":
            return json_response({"error": "service unavailable", "provider": provider}, status=503)
        if state["mode"] == "slow":
            threading.Event().wait(state["delay"])  # this request's thread only
        return None

    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            response = getattr(self, endpoint)(request, **values)
        except BadRequest as error:
            response = json_response(error.body, status=error.status)
        except HTTPException as error:
            headers = [h for h in error.get_headers() if h[0].lower() != "content-type"]
            response = json_response({"error": error.name}, status=error.code, headers=headers)
        return response(environ, start_response)


def serve(app, host, port, describe, also_stop=()):
    """Serve ``app`` on a threaded server until SIGTERM or SIGINT; print one line saying
    where it listens (``describe(port)`` builds it). ``also_stop`` are callables run on the
    way out (other servers of the same process)."""
    server = make_server(host, port, app, threaded=True)
    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="http", daemon=True)
    thread.start()
    print(describe(server.server_port), flush=True)
    while not stopping.wait(0.5):
        if not thread.is_alive():
            break
    server.shutdown()
    server.server_close()
    for extra in also_stop:
        extra()
    print(f"{app.name} stand-in stopped", flush=True)
