"""What the gateway does for browsers: security headers and the cross-site request check.

- ``add_security_headers``: every answer carries ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` and a Content-Security-Policy. The panel's HTML gets
  ``PANEL_CSP`` (scripts, styles, images and connections from the gateway's own origin
  only: no inline script, no ``eval``, no framing); every other answer (JSON, downloads)
  gets ``API_CSP``, which allows nothing at all, so a response opened as a page cannot
  run anything.
  API answers (``/api/…``) also get ``Cache-Control: no-store`` unless the route chose
  otherwise (they carry a customer's data, credentials or tokens: no cache keeps them),
  and every answer ``Strict-Transport-Security`` when ``HSTS_SECONDS`` is above 0 (the
  default outside development: a year).
- ``CorsPolicy``: cross-origin API access for front-ends served elsewhere, off by default.
  ``CORS_ORIGINS`` lists the origins allowed; a request from one of them gets
  ``Access-Control-Allow-Origin`` (and ``Vary: Origin``) and its preflight a 204 naming
  the methods of that path and the headers clients send. Credentials (the session cookie)
  are never allowed cross-origin: such front-ends use API tokens.
- ``cross_site_refusal``: the CSRF defence of the session cookie. A state-changing request
  (not GET/HEAD/OPTIONS) that carries the session cookie and no ``Authorization`` header
  must come from the gateway's own origin: its ``Origin`` header (or, for browsers that
  send none, its ``Referer``) must be the request's own host, or one of ``PANEL_ORIGINS``
  (the origins the panel is served from when a proxy in front renames the host). A
  request with a foreign ``Origin`` is refused whatever it carries unless it authenticates
  with a bearer token (which a browser never adds on its own), so a foreign page can
  neither act with a customer's cookie nor log the browser into another account. Bearer
  clients (the CLI, scripts) and server-to-server calls (payment webhooks) are not
  affected.
"""

from urllib.parse import urlsplit

from common.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PANEL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def add_security_headers(response, path="", hsts_seconds=0):
    """Set the browser security headers on ``response`` (a werkzeug Response) answering
    ``path`` (see the module docstring)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if "Content-Security-Policy" not in headers:
        is_html = (response.mimetype or "") == "text/html"
        headers["Content-Security-Policy"] = PANEL_CSP if is_html else API_CSP
    if path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if hsts_seconds > 0:
        headers.setdefault("Strict-Transport-Security", f"max-age={int(hsts_seconds)}; includeSubDomains")
    return response


class CorsPolicy:
    """``CORS_ORIGINS`` (see the module docstring); ``CorsPolicy("")`` allows none."""

    ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID"
    EXPOSED_HEADERS = "Retry-After, X-Request-ID, Idempotent-Replayed, Content-Disposition, Location"
    MAX_AGE_SECONDS = 600

    def __init__(self, setting):
        self.origins = allowed_origins(setting)

    def allows(self, request):
        """The request's Origin when it is allowed cross-origin API access, else None."""
        origin = request.headers.get("Origin")
        if not self.origins or not origin or not request.path.startswith("/api/"):
            return None
        origin = origin_of(origin)
        return origin if origin in self.origins else None

    def is_preflight(self, request):
        return (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
                and self.allows(request) is not None)

    def preflight_headers(self, request, methods):
        """The headers of the 204 answering a preflight for a path allowing ``methods``."""
        return {"Access-Control-Allow-Origin": self.allows(request), "Vary": "Origin",
                "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
                "Access-Control-Allow-Headers": self.ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(self.MAX_AGE_SECONDS)}

    def add_headers(self, request, response):
        origin = self.allows(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = self.EXPOSED_HEADERS
            response.headers.add("Vary", "Origin")
        return response


def origin_of(url):
    """``scheme://host[:port]`` of a URL or Origin header, lower-cased; None when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def allowed_origins(setting):
    """``PANEL_ORIGINS``: a comma-separated string or a list of origins."""
    if isinstance(setting, str):
        setting = setting.split(",")
    return frozenset(filter(None, (origin_of(item) for item in setting or ())))


def cross_site_refusal(request, cookie_name, extra_origins=frozenset()):
    """A ``Forbidden`` error when ``request`` is a cross-site state change (see the module
    docstring), else None."""
    if request.method in SAFE_METHODS or request.headers.get("Authorization"):
        return None
    host = (request.host or "").lower()
    own = {f"http://{host}", f"https://{host}"} | set(extra_origins)
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        claimed = origin_of(origin)
    else:
        referer = request.headers.get("Referer")
        claimed = origin_of(referer) if referer else None
    if claimed in own or (claimed is None and cookie_name not in request.cookies):
        return None  # the panel's own page, or neither a page's origin nor the cookie
    return Forbidden("Cross-site request refused: this request must come from the panel's own page "
                     "(or authenticate with an Authorization header).")
