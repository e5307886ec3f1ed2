"""The gateway's public HTTP API, as the command line uses it (nothing else is reached).

``Client`` sends JSON requests with the API token, turns every error envelope into an
``ApiError`` (code, message, fields and request id, as API.md defines them), retries a
request that never reached the gateway or met a 503 (reads, and commands, each sent with
an ``Idempotency-Key`` the API deduplicates by), reads the Server-Sent Events stream
(reconnecting with ``Last-Event-ID``), and follows an operation to its end on that stream.
"""

import json
import time
import uuid

import requests

from hostctl import __version__

DEFAULT_API = "http://127.0.0.1:8000"
RETRIES = 3


class ApiError(Exception):
    """An answer of the API that is not a success, or no answer at all (``status`` 0)."""

    def __init__(self, status, code, message, request_id=None, fields=None, extra=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.request_id, self.fields, self.extra = request_id, fields or {}, extra or {}

    @classmethod
    def from_response(cls, response):
        try:
            body = response.json()
            error = body["error"]
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "http_error", f"HTTP {response.status_code} from {response.url}",
                       response.headers.get("X-Request-ID"))
        extra = {key: value for key, value in error.items() if key not in ("code", "message", "fields")}
        if "Retry-After" in response.headers:
            extra["retry_after"] = response.headers["Retry-After"]
        return cls(response.status_code, error.get("code", "error"), error.get("message", ""),
                   body.get("request_id") or response.headers.get("X-Request-ID"), error.get("fields"), extra)


class OperationTimeout(Exception):
    """``--wait`` gave up before the operation finished (it goes on in the background)."""


class Client:
    def __init__(self, base_url=DEFAULT_API, token=None, timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["User-Agent"] = f"hostctl/{__version__}"
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def url(self, path):
        return f"{self.base_url}/api/v1{path}"

    def request(self, method, path, *, idempotent=None, stream=False, timeout=None, **kwargs):
        """The response of ``method path`` (2xx), else ``ApiError``. A command goes with an
        ``Idempotency-Key`` (the same one on every attempt), so a retry after a lost answer
        never does its work twice: every state-changing call of the API deduplicates by it
        but the sign-in steps under ``/auth/`` (``idempotent`` None: decided by the path)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotent is None:
            idempotent = method not in ("GET", "HEAD") and not path.startswith("/auth/")
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        retry = method in ("GET", "HEAD") or bool(idempotent)
        for attempt in range(RETRIES if retry else 1):
            try:
                response = self.http.request(method, self.url(path), headers=headers, stream=stream,
                                             timeout=timeout or self.timeout, **kwargs)
            except requests.ConnectionError as exc:
                if attempt + 1 < (RETRIES if retry else 1):
                    time.sleep(0.5 * 2 ** attempt)
                    continue
                raise ApiError(0, "unreachable", f"Cannot reach the API at {self.base_url}: {exc.__class__.__name__}.")
            except requests.Timeout:
                raise ApiError(0, "timeout", f"The API at {self.base_url} did not answer in time.")
            if response.status_code == 503 and retry and attempt + 1 < RETRIES:
                time.sleep(float(response.headers.get("Retry-After") or 0.5 * 2 ** attempt))
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            return response

    def get(self, path, **params):
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path, body=None, idempotent=None, **kwargs):
        """POST ``body`` (retried safely with its ``Idempotency-Key``, see ``request``)."""
        response = self.request("POST", path, json=body, idempotent=idempotent, **kwargs)
        return response.json() if response.content else None

    def patch(self, path, body):
        return self.request("PATCH", path, json=body).json()

    def delete(self, path, **params):
        response = self.request("DELETE", path, params=params or None)
        return response.json() if response.content else None

    # -- paging ------------------------------------------------------------------------------

    def all_pages(self, path, per_page=500, **params):
        """Every item of a list, page by page."""
        page = 1
        while True:
            answer = self.get(path, page=page, per_page=per_page, **params)
            yield from answer["items"]
            if page * answer["per_page"] >= answer["total"] or not answer["items"]:
                return
            page += 1

    # -- the event stream ----------------------------------------------------------------------

    def events(self, last_event_id=None, read_timeout=45.0, reconnect=True):
        """The customer's live action log: ``(event, data)`` pairs as they come (``data``
        parsed for ``notification`` events), and ``("heartbeat", None)`` for the stream's
        keep-alive comments, so a caller can check its own deadline. After a network drop
        it reconnects, sending the last id it saw; it ends when the session (or token)
        has ended."""
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            try:
                response = self.request("GET", "/notifications/stream", stream=True, headers=headers,
                                        timeout=(10, read_timeout))
                yield "connected", None
                for event, event_id, data in parse_sse(response.iter_lines(chunk_size=None, decode_unicode=True)):
                    if event_id is not None:
                        last_event_id = event_id
                    if event == "session_ended":
                        return
                    yield event, (json.loads(data) if event == "notification" and data else data)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                if not reconnect:
                    raise ApiError(0, "unreachable", "The event stream was cut.")
                time.sleep(1)
                continue
            if not reconnect:
                return

    def wait_for_operation(self, operation_id, timeout=600.0, on_progress=None):
        """The operation once it has finished, followed on the event stream: the stream is
        open before its state is read, so its end cannot slip between the two. Without the
        ``notifications:read`` scope it asks for the state now and then instead."""
        deadline = time.monotonic() + timeout
        try:
            stream = self.events(read_timeout=min(45.0, timeout + 1))
            next(stream)  # connected: from here on no entry is missed
        except ApiError as error:
            if error.status != 403:
                raise
            return self._poll_operation(operation_id, deadline, on_progress)
        try:
            operation = self.get(f"/operations/{operation_id}")
            if operation["status"] in ("succeeded", "failed"):
                return operation
            for event, data in stream:
                if event == "notification" and data.get("operation_id") == operation_id:
                    if on_progress:
                        on_progress(data)
                    if data.get("level") in ("success", "error"):
                        return self.get(f"/operations/{operation_id}")
                if event == "connected":  # reconnected: the end may have come meanwhile
                    operation = self.get(f"/operations/{operation_id}")
                    if operation["status"] in ("succeeded", "failed"):
                        return operation
                if time.monotonic() >= deadline:
                    break
        finally:
            stream.close()
        raise OperationTimeout(operation_id)

    def _poll_operation(self, operation_id, deadline, on_progress):
        delay = 0.5
        while time.monotonic() < deadline:
            operation = self.get(f"/operations/{operation_id}")
            if operation["status"] in ("succeeded", "failed"):
                return operation
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 5.0)
        raise OperationTimeout(operation_id)


def parse_sse(lines):
    """Server-Sent Events from an iterator of lines: ``(event, id, data)`` per event, and
    ``("heartbeat", None, None)`` per comment line (the stream's keep-alives)."""
    event, event_id, data = None, None, []
    for line in lines:
        if line is None:
            continue
        if line == "":
            if data or event:
                yield event or "message", event_id, "\n".join(data)
            event, event_id, data = None, None, []
        elif line.startswith(":"):
            yield "heartbeat", None, None
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
