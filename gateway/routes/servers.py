"""Server routes (API.md "Servers", R-SRV-1…6, R-ASYNC-1) and the operations view."""

import csv
import io
import json

from werkzeug.wrappers import Response

from common.config import SERVICES
from common.errors import NotFound
from common.operations import owner_of
from gateway.http import http, load_json, load_query
from gateway.idempotency import idempotent
from gateway.schemas import (
    ServerActionSchema,
    ServerExportQuerySchema,
    ServerListQuerySchema,
    ServerPatchSchema,
)

BASE = "/api/v1"
EXPORT_PAGE = 1000
EXPORT_COLUMNS = ("number", "tag", "ip", "ips", "location", "status", "power", "plan", "os", "paid_until",
                  "price_month", "id")


def export_rows(fetch_page):
    """Every server, page after page (keyset by number): constant memory however many."""
    after = None
    while True:
        page = fetch_page(after)
        yield from page
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1]["number"]


def csv_stream(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([" ".join(row[c]) if c == "ips" else row[c] for c in EXPORT_COLUMNS])
        if buffer.tell() > 32768:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_stream(rows):
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row)
    yield "]"


class ServerRoutes:
    @http("GET", f"{BASE}/servers")
    def list_servers(self, request):
        """The customer's servers, filtered by location, status and a search (R-SRV-1/2/3/5).
        ---
        get:
          tags: [servers]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: ServerListQuerySchema}
          responses:
            200: {content: {application/json: {schema: ServerList}}}
            400: {content: {application/json: {schema: Error}}}
            401: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, ServerListQuerySchema)
        return self.cluster.inventory.list_servers(**query)

    @http("GET", f"{BASE}/servers/export")
    def export_servers(self, request):
        """Every server of the customer (with the active filters) as CSV or JSON, streamed (R-SRV-4).
        ---
        get:
          tags: [servers]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: ServerExportQuerySchema}
          responses:
            200:
              description: a download (Content-Disposition attachment)
              content:
                text/csv: {}
                application/json: {}
        """
        self.sessions.authenticate(request)
        query = load_query(request, ServerExportQuerySchema)
        fmt = query.pop("format")
        inventory = self.cluster.inventory

        def fetch_page(after):
            return inventory.export_page(after_number=after, limit=EXPORT_PAGE, **query)

        first = fetch_page(None)  # errors surface as a proper answer, not a broken download
        rows = export_rows(lambda after: first if after is None else fetch_page(after))
        body = csv_stream(rows) if fmt == "csv" else json_stream(rows)
        mimetype = "text/csv" if fmt == "csv" else "application/json"
        return Response(body, mimetype=mimetype, headers={
            "Content-Disposition": f'attachment; filename="servers.{fmt}"', "Cache-Control": "no-store"})

    @http("GET", f"{BASE}/servers/<server_id>")
    def get_server(self, request, server_id):
        """One server: hardware, addresses, OS, live power state, recent operations (R-SRV-6).
        ---
        get:
          tags: [servers]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: ServerDetail}}}
            404: {description: no such server (or another customer's), content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.inventory.get_server(server_id)

    @http("PATCH", f"{BASE}/servers/<server_id>")
    @idempotent
    def tag_server(self, request, server_id):
        """Set (or clear, with null) the server's tag.
        ---
        patch:
          tags: [servers]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {content: {application/json: {schema: ServerPatch}}}
          responses:
            200: {content: {application/json: {schema: Server}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, ServerPatchSchema())
        return self.cluster.inventory.set_tag(server_id, body["tag"])

    @http("POST", f"{BASE}/servers/<server_id>/actions")
    @idempotent
    def server_action(self, request, server_id):
        """Power on/off, reboot or reinstall: accepted at once as an operation (R-ASYNC-1).
        ---
        post:
          tags: [servers]
          security: [{bearer: []}, {cookie: []}]
          requestBody: {content: {application/json: {schema: ServerAction}}}
          responses:
            202: {content: {application/json: {schema: OperationAccepted}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: "another operation runs on this server, or it is suspended", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, ServerActionSchema())
        operation = self.cluster.inventory.request_action(server_id, body["action"], body.get("os"))
        return 202, {"operation": operation}

    @http("GET", f"{BASE}/os-images")
    def os_images(self, request):
        """Operating systems a server can be reinstalled with.
        ---
        get:
          tags: [servers]
          responses:
            200: {content: {application/json: {schema: OsImageList}}}
        """
        items = self.cluster.inventory.os_images()
        return {"items": items, "total": len(items), "page": 1, "per_page": len(items)}

    @http("GET", f"{BASE}/operations/<operation_id>")
    def get_operation(self, request, operation_id):
        """An operation of the customer's: status, title, detail, target, times.
        ---
        get:
          tags: [operations]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Operation}}}
            404: {description: "unknown, or another customer's", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        owner = owner_of(operation_id)
        if owner not in OPERATION_OWNERS:
            raise NotFound("No such operation.")
        return getattr(self.cluster, owner).get_operation(operation_id)


# Services that run operations (an operation id starts with its owner's name).
OPERATION_OWNERS = frozenset(s for s in SERVICES if s != "notify")
