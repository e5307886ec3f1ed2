"""Support ticket routes (API.md "Support", R-SUP-1…4).

A request or reply is multipart (``subject``/``description`` or ``body``, ``attachments``
files, repeatable) or, without files, JSON. Attachments are refused here, before they
travel anywhere: a body larger than the per-message limit plus the form's overhead is a
413 from its ``Content-Length`` alone, before it is read (and werkzeug stops reading a
chunked body at the same limit); then each file over 10 MiB, or 25 MiB together, is a 413,
and a type not on the allow-list or whose bytes disagree with its declared type is a 415
(``services.support.attachments``, the same rules the support service applies again).

Files then go to the support service one per RPC (base64, at most 10 MiB each, so no broker
message exceeds ~14 MB), which stores them and answers an upload id; the request or reply
names those ids. Downloads come back the same way and leave with the stored type,
``Content-Disposition: attachment`` and ``X-Content-Type-Options: nosniff``.
"""

import base64
import re
from urllib.parse import quote

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from common.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from gateway.http import JSON_TYPE, http, idempotency_key, load_json, load_query
from gateway.idempotency import idempotent
from gateway.schemas import MessageTextSchema, TicketQuerySchema, TicketTextSchema
from services.support import attachments as policy

BASE = "/api/v1/support"
# Moving up to 10 MiB (base64) through the broker and the blob store takes longer than a query.
TRANSFER_TIMEOUT_SECONDS = 30
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


# -- helpers ------------------------------------------------------------------------------


NOT_A_FILE = "Attach files in a multipart/form-data body (the form field attachments, one file each)."


def read_form(request, schema):
    """The text fields (loaded with ``schema``) and the checked files of a request:
    ``(fields, [(filename, declared type, bytes)])``. JSON bodies have no files: one that
    names attachments is refused rather than losing them without a word."""
    if request.mimetype == JSON_TYPE:
        loaded = load_json(request, schema)
        if request.get_json(silent=True).get("attachments") not in (None, []):
            raise ValidationFailed("A JSON body carries no files.", fields={"attachments": [NOT_A_FILE]})
        return loaded, []
    if request.mimetype not in FORM_TYPES:
        raise UnsupportedMediaType("Send multipart/form-data (or JSON without files).",
                                   fields={"body": ["multipart/form-data or application/json."]})
    if request.content_length is not None and request.content_length > policy.MAX_REQUEST_BYTES:
        raise too_large()
    request.max_content_length = policy.MAX_REQUEST_BYTES
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise too_large()
    if "attachments" in form:  # text where a file belongs
        raise ValidationFailed("attachments must be files.", fields={"attachments": [NOT_A_FILE]})
    loaded = schema.load({key: form.get(key) for key in form})
    return loaded, checked_files(files.getlist("attachments"))


def too_large():
    return PayloadTooLarge(f"The request is larger than {policy.MAX_MESSAGE_BYTES // policy.MIB} MiB of attachments.",
                           fields={"attachments": [f"At most {policy.MAX_MESSAGE_BYTES // policy.MIB} MiB per message."]})


def checked_files(uploads):
    """Sizes first (413), then types (415): ``[(filename, declared type, bytes)]``."""
    uploads = [f for f in uploads if f.filename or f.stream.read(1)]  # a form's empty file input
    if len(uploads) > policy.MAX_FILES:
        raise ValidationFailed("Too many files.", fields={"attachments": [f"At most {policy.MAX_FILES} files."]})
    sized, total = [], 0
    for upload in uploads:
        name = policy.safe_filename(upload.filename)
        upload.stream.seek(0, 2)
        size = upload.stream.tell()
        policy.check_file_size(name, size)
        total += size
        sized.append((name, upload))
    policy.check_message_size(total)
    checked = []
    for name, upload in sized:
        upload.stream.seek(0)
        data = upload.stream.read()
        if not data:
            raise ValidationFailed("An empty file.", fields={"attachments": [f"{name}: the file is empty."]})
        policy.classify(name, upload.mimetype, data[:policy.SNIFF_BYTES])
        checked.append((name, upload.mimetype, data))
    return checked


def content_disposition(filename):
    """``attachment`` with an ASCII ``filename`` every client reads and, when the name is
    not plain ASCII, the exact name as RFC 5987 ``filename*``."""
    fallback = re.sub(r"[^A-Za-z0-9._()\[\] -]", "_", filename) or "attachment"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class SupportRoutes:
    def _stage(self, files):
        support = self.cluster.support
        return [support.stage_attachment.call(name, declared, base64.b64encode(data).decode("ascii"),
                                              timeout=TRANSFER_TIMEOUT_SECONDS)["upload_id"]
                for name, declared, data in files]

    @http("GET", f"{BASE}/tickets")
    def list_tickets(self, request):
        """The customer's support requests, newest activity first, filtered by status (R-SUP-1).
        ---
        get:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: TicketQuerySchema}
          responses:
            200: {content: {application/json: {schema: TicketList}}}
            400: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.support.list_tickets(**load_query(request, TicketQuerySchema))

    @http("POST", f"{BASE}/tickets")
    def open_ticket(self, request):
        """Open a support request: subject, description, attachments, optionally a server (R-SUP-2).
        ---
        post:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200}}
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema: TicketCreate
                encoding: {attachments: {contentType: "image/png, image/jpeg, image/gif, image/webp, application/pdf, application/zip, text/plain, text/csv"}}
              application/json: {schema: TicketText}
          responses:
            201: {content: {application/json: {schema: TicketDetail}}}
            400: {description: "a missing field, or server_id not one of the customer's servers", content: {application/json: {schema: Error}}}
            413: {description: "a file over 10 MiB, or over 25 MiB together", content: {application/json: {schema: Error}}}
            415: {description: "a type not accepted, or content that is not the declared type", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        key = idempotency_key(request)
        form, files = read_form(request, TicketTextSchema())
        uploads = self._stage(files)
        return 201, self.cluster.support.open_ticket(form["subject"], form["description"], form.get("server_id"),
                                                     uploads=uploads, idempotency_key=key)

    @http("GET", f"{BASE}/tickets/<ticket_id>")
    def get_ticket(self, request, ticket_id):
        """A support request with its messages and attachments, at any time (R-SUP-3).
        ---
        get:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: TicketDetail}}}
            404: {description: no such request (or another customer's), content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.support.get_ticket(ticket_id)

    @http("POST", f"{BASE}/tickets/<ticket_id>/messages")
    def add_ticket_message(self, request, ticket_id):
        """Reply to a request; an answered one becomes open again, a closed one reopened.
        ---
        post:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200}}
          requestBody:
            required: true
            content:
              multipart/form-data: {schema: MessageCreate}
              application/json: {schema: MessageText}
          responses:
            201: {content: {application/json: {schema: MessageCreated}}}
            400: {content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
            413: {content: {application/json: {schema: Error}}}
            415: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        key = idempotency_key(request)
        self.cluster.support.get_ticket(ticket_id)  # 404 before any file is stored
        form, files = read_form(request, MessageTextSchema())
        uploads = self._stage(files)
        return 201, self.cluster.support.add_message(ticket_id, form["body"], uploads=uploads, idempotency_key=key)

    @http("POST", f"{BASE}/tickets/<ticket_id>/close")
    @idempotent
    def close_ticket(self, request, ticket_id):
        """Close a request (closing a closed one changes nothing).
        ---
        post:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Ticket}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.support.close_ticket(ticket_id)

    @http("POST", f"{BASE}/tickets/<ticket_id>/reopen")
    @idempotent
    def reopen_ticket(self, request, ticket_id):
        """Reopen a closed request.
        ---
        post:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: Ticket}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: the request is not closed, content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.support.reopen_ticket(ticket_id)

    @http("GET", f"{BASE}/tickets/<ticket_id>/attachments/<attachment_id>")
    def download_attachment(self, request, ticket_id, attachment_id):
        """An attachment's file, byte for byte, as a download.
        ---
        get:
          tags: [support]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200:
              description: the file, with its stored type, Content-Disposition attachment and X-Content-Type-Options nosniff
              content: {application/octet-stream: {schema: {type: string, format: binary}}}
            404: {description: no such attachment (or another customer's), content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        found = self.cluster.support.read_attachment.call(ticket_id, attachment_id, timeout=TRANSFER_TIMEOUT_SECONDS)
        data = base64.b64decode(found["data_base64"])
        content_type = found["content_type"]
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"  # text attachments were checked to be UTF-8
        return Response(data, status=200, content_type=content_type, headers={
            "Content-Disposition": content_disposition(found["filename"]),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        })

    @http("GET", f"{BASE}/attachment-rules")
    def attachment_rules(self, request):
        """What attachments may be: sizes, how many, which types.
        ---
        get:
          tags: [support]
          responses:
            200: {content: {application/json: {schema: AttachmentRules}}}
        """
        return {"max_file_bytes": policy.MAX_FILE_BYTES, "max_message_bytes": policy.MAX_MESSAGE_BYTES,
                "max_files": policy.MAX_FILES, "types": dict(policy.ALLOWED_TYPES)}
