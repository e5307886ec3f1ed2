"""The customer panel's files (web/, built into ``PANEL_DIST_DIR``), served on the API's origin.

The panel is a single-page application: every screen's address (``/servers/…``,
``/billing``, …) answers the same ``index.html`` and the application draws the screen;
its scripts and styles are under ``/assets/`` with content-hashed names, cached for a
year. The HTML gets the panel's strict Content-Security-Policy (``gateway.browser``).
When the panel was not built, these addresses answer 503 saying how to build it; the API
does not depend on it.
"""

import mimetypes
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from common.config import REPO_ROOT
from common.errors import NotFound, ServiceUnavailable
from gateway.http import http

DEFAULT_DIST_DIR = REPO_ROOT / "web" / "dist"
ASSET_CACHE = "public, max-age=31536000, immutable"


def dist_dir(config):
    return Path(config.get("PANEL_DIST_DIR") or DEFAULT_DIST_DIR)


def index_response(folder):
    index = folder / "index.html"
    try:
        body = index.read_bytes()
    except FileNotFoundError:
        raise ServiceUnavailable("The panel is not built: run `make setup` (or `npm ci && npm run build` in web/).")
    # The HTML names the current hashed assets: never serve a stale copy of it.
    return Response(body, mimetype="text/html", headers={"Cache-Control": "no-cache"})


class PanelRoutes:
    @http("GET", "/")
    @http("GET", "/login")
    @http("GET", "/reset-password")
    @http("GET", "/servers")
    @http("GET", "/servers/<server_id>")
    @http("GET", "/instant")
    @http("GET", "/stock")
    @http("GET", "/storage")
    @http("GET", "/storage/<storage_id>")
    @http("GET", "/billing")
    @http("GET", "/support")
    @http("GET", "/support/<ticket_id>")
    @http("GET", "/developer")
    def panel_screen(self, request, **screen):
        """The customer panel (HTML): the same single-page application on every screen's address.
        ---
        get:
          tags: [panel]
          responses:
            200: {description: the panel's index.html, content: {text/html: {}}}
            503: {description: "the panel is not built (make setup builds it)", content: {application/json: {schema: Error}}}
        """
        return index_response(dist_dir(self.config))

    @http("GET", "/assets/<path:name>")
    def panel_asset(self, request, name):
        """One of the panel's built files (scripts, styles, images), cached for a year.
        ---
        get:
          tags: [panel]
          responses:
            200: {description: the file, content: {application/octet-stream: {}}}
            404: {content: {application/json: {schema: Error}}}
        """
        path = safe_join(str(dist_dir(self.config) / "assets"), name)
        if path is None or not Path(path).is_file():
            raise NotFound("No such file.")
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as file:
            body = file.read()
        return Response(body, mimetype=mimetype, headers={"Cache-Control": ASSET_CACHE})
