"""The support service's use cases: customers' requests and replies with attachments, the
staff's side of the conversation, and the blob store the attachments' bytes live in.

Attachments arrive one file per call (``stage_upload``: base64 over RPC, at most 10 MiB, so
no broker message exceeds ~14 MB) and are stored at once under a generated key, next to a
small description (``<key>.meta``: owner, name, type, size, digest). A request or reply
then names its uploads; they are claimed — checked to be the caller's, fresh and intact —
and recorded with the message in one append. Uploads never claimed are deleted by
``sweep_uploads`` after ``SUPPORT_UPLOAD_TTL_SECONDS``. The bytes are written before the
event that refers to them, so no recorded attachment ever lacks its file.
"""

import base64
import binascii
import hashlib
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common import context
from common.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import retrying, utcnow
from common.paging import page_problems
from services.support import attachments as policy
from services.support import domain
from services.support.adapters import BlobNotFound, BlobStoreError, check_key
from services.support.projections import (
    any_attached,
    attached_keys,
    attachment_of,
    attachments_of_message,
    attachments_of_ticket,
    list_order,
    message_by_key,
    message_of,
    messages_of,
    ticket_by_key,
    ticket_of,
    ticket_page,
)

log = logging.getLogger(__name__)
# Who staged an upload that staff attach (customers' uploads carry their user id).
STAFF_UPLOADER = "staff"


def ticket_item(row, staff=False):
    item = {"id": row["ticket_id"], "subject": row["subject"], "status": row["status"],
            "created_at": row["created_at"], "updated_at": row["updated_at"], "server_id": row["server_id"],
            "server_number": row["server_number"], "messages": row["message_count"],
            "last_author": row["last_author"]}
    if staff:
        item["user_id"] = row["user_id"]
    return item


def attachment_item(row):
    return {"id": row["attachment_id"], "filename": row["filename"], "content_type": row["content_type"],
            "size": row["size"]}


def message_item(row, files):
    return {"id": row["message_id"], "author": row["author"], "staff_name": row["staff_name"], "body": row["body"],
            "created_at": row["created_at"], "attachments": files}


def check_page(page, per_page):
    problems = page_problems(page, per_page)
    if problems:
        raise ValidationFailed("Bad page.", fields=problems)


class SupportUseCases:
    def __init__(self, store, blobs, clock, config):
        self.store = store
        self.blobs = blobs
        self.clock = clock
        self.upload_ttl = timedelta(seconds=float(config.get("SUPPORT_UPLOAD_TTL_SECONDS") or 86400))

    def _at(self):
        return self.clock.now().isoformat(timespec="microseconds")

    # -- reading -----------------------------------------------------------------------------

    def _ticket_row(self, ticket_id, user_id=None):
        """The request; another customer's is exactly as absent as one that never was."""
        row = self.store.read(ticket_of, ticket_id, user_id)
        if row is None:
            raise NotFound("No such support request.")
        return row

    def list_tickets(self, user_id, status="all", page=1, per_page=50, cursor=None):
        """``user_id`` None: every customer's (staff). Newest activity first: by ``page``, or
        by ``cursor`` (the previous answer's ``next_cursor``: the requests with older activity
        than its last one, at the same cost however far back; a request that has activity
        meanwhile moves to the top, out of the walk)."""
        domain.check_filter(status)
        check_page(page, per_page)
        try:
            before = list_order.position(cursor)
        except ValueError:
            raise ValidationFailed("Bad cursor.", fields={"cursor": ["The next_cursor of an earlier answer."]})
        rows, total, next_cursor = self.store.read(ticket_page, user_id, status, page, per_page, before)
        return {"items": [ticket_item(r, staff=user_id is None) for r in rows], "total": total, "page": page,
                "per_page": per_page, "next_cursor": next_cursor}

    def get_ticket(self, user_id, ticket_id):
        """The request with its whole conversation and its attachments' metadata."""
        row = self._ticket_row(ticket_id, user_id)
        messages = self.store.read(messages_of, row["ticket_id"])
        files = {}
        for attachment in self.store.read(attachments_of_ticket, row["ticket_id"]):
            files.setdefault(attachment["message_id"], []).append(attachment_item(attachment))
        view = ticket_item(row, staff=user_id is None)
        view["messages"] = [message_item(m, files.get(m["message_id"], [])) for m in messages]
        view["attachments"] = [f for m in view["messages"] for f in m["attachments"]]
        return view

    def read_attachment(self, user_id, ticket_id, attachment_id):
        """One attachment's bytes (base64) with its name and type."""
        self._ticket_row(ticket_id, user_id)
        row = self.store.read(attachment_of, ticket_id, attachment_id)
        if row is None:
            raise NotFound("No such attachment.")
        try:
            data = self.blobs.get(row["blob_key"])
        except BlobNotFound:
            log.error("an attachment's file is missing", extra={"attachment_id": row["attachment_id"]})
            raise NotFound("The attachment's file is missing.")
        except BlobStoreError:
            raise ServiceUnavailable("Attachments cannot be read right now; try again.")
        return dict(attachment_item(row), data_base64=base64.b64encode(data).decode("ascii"))

    # -- uploads -----------------------------------------------------------------------------

    def stage_upload(self, user_id, filename, declared_type, data_base64):
        """Store one file for a request or reply of ``user_id`` to come; returns its
        ``upload_id`` and what it was found to be. Refused: too large (413), not an
        accepted type or not what it claims (415), empty or not base64 (400)."""
        filename = policy.safe_filename(filename)
        try:
            data = base64.b64decode(data_base64 or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValidationFailed("The file is not base64.", fields={"attachments": [f"{filename}: not base64."]})
        if not data:
            raise ValidationFailed("An empty file.", fields={"attachments": [f"{filename}: the file is empty."]})
        policy.check_file_size(filename, len(data))
        content_type = policy.classify(filename, declared_type, data[:policy.SNIFF_BYTES])
        key = context.new_id()
        meta = {"user_id": user_id, "filename": filename, "content_type": content_type, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "staged_at": utcnow().isoformat()}
        try:
            self.blobs.put(key, data, content_type)
            self.blobs.put(f"{key}.meta", json.dumps(meta).encode(), "application/json")
        except BlobStoreError:
            raise ServiceUnavailable("Attachments cannot be stored right now; try again.")
        return {"upload_id": key, "filename": filename, "content_type": content_type, "size": len(data)}

    def _claim(self, user_id, upload_ids):
        """The attachments made of these uploads of ``user_id`` (``ValidationFailed`` naming
        ``attachments`` for an unknown, foreign, stale or damaged one)."""
        upload_ids = list(dict.fromkeys(upload_ids or ()))
        if len(upload_ids) > policy.MAX_FILES:
            raise ValidationFailed("Too many files.", fields={"attachments": [f"At most {policy.MAX_FILES} files."]})
        unknown = ValidationFailed("An attachment is unknown or expired; upload it again.",
                                   fields={"attachments": ["Unknown or expired upload."]})
        records, total = [], 0
        for upload_id in upload_ids:
            try:
                check_key(upload_id)
                meta = json.loads(self.blobs.get(f"{upload_id}.meta"))
                size = self.blobs.size(upload_id)
            except (ValueError, BlobNotFound):
                raise unknown
            except BlobStoreError:
                raise ServiceUnavailable("Attachments cannot be read right now; try again.")
            staged = datetime.fromisoformat(meta["staged_at"])
            if meta["user_id"] != user_id or size != meta["size"] or utcnow() - staged > self.upload_ttl:
                raise unknown
            total += size
            records.append({"id": context.new_id(), "filename": meta["filename"],
                            "content_type": meta["content_type"], "size": size, "sha256": meta["sha256"],
                            "blob_key": upload_id})
        policy.check_message_size(total)
        if records and self.store.read(any_attached, [r["blob_key"] for r in records]):
            raise unknown  # already part of a message
        return records

    def _release(self, records):
        """The uploads are part of a message now: their descriptions are not needed."""
        for record in records:
            try:
                self.blobs.delete(f"{record['blob_key']}.meta")
            except BlobStoreError:
                pass  # the sweep removes it later

    def sweep_uploads(self):
        """Delete uploads never claimed within the TTL (and stale descriptions); returns how many."""
        cutoff = utcnow() - self.upload_ttl
        try:
            old = self.blobs.keys_older_than(cutoff)
        except BlobStoreError:
            log.warning("could not list the blob store for the upload sweep")
            return 0
        data_keys = [key for key in old if not key.endswith(".meta")]
        kept = self.store.read(attached_keys, data_keys) if data_keys else set()
        removed = 0
        for key in old:
            if key.endswith(".meta") or key not in kept:
                try:
                    self.blobs.delete(key)
                    removed += 1
                except BlobStoreError:
                    pass  # left for the next sweep
        return removed

    # -- customers ---------------------------------------------------------------------------

    def _server(self, server_id, find_server):
        if server_id in (None, ""):
            return None
        if not isinstance(server_id, str) or len(server_id) > 64:
            raise ValidationFailed("No such server.", fields={"server_id": ["Not one of your servers."]})
        try:
            server = find_server(server_id)
        except NotFound:
            raise ValidationFailed("No such server.", fields={"server_id": ["Not one of your servers."]})
        return {"id": server["id"], "number": server.get("number")}

    def open_ticket(self, user_id, subject, description, server_id=None, uploads=(), idempotency_key=None,
                    find_server=None):
        """A new request (R-SUP-2); the same ``idempotency_key`` answers the first one again."""
        if idempotency_key:
            earlier = self.store.read(ticket_by_key, user_id, idempotency_key)
            if earlier is not None:
                if earlier["subject"] != domain.check_request(subject, description)[0]:
                    raise error_with_code(Conflict, "idempotency_key_reused",
                                          "This Idempotency-Key was used for a different request.")
                return self.get_ticket(user_id, earlier["ticket_id"])
        domain.check_request(subject, description)
        server = self._server(server_id, find_server)
        records = self._claim(user_id, uploads)
        ticket_id = context.new_id()
        events = domain.Ticket.open(ticket_id, user_id, subject, description, server, context.new_id(), records,
                                    self._at(), idempotency_key)
        try:
            self.store.create(domain.Ticket, ticket_id, events)
        except IntegrityError:
            # The same Idempotency-Key raced us: the first one's answer stands.
            return self.open_ticket(user_id, subject, description, server_id, (), idempotency_key, find_server)
        self._release(records)
        return self.get_ticket(user_id, ticket_id)

    def _post(self, ticket_id, user_id, author, body, uploads, staff_name=None, idempotency_key=None):
        row = self._ticket_row(ticket_id, user_id)
        ticket_id = row["ticket_id"]
        if idempotency_key:
            earlier = self.store.read(message_by_key, ticket_id, idempotency_key)
            if earlier is not None:
                return self._message(ticket_id, earlier)
        domain.check_body(body)
        owner = STAFF_UPLOADER if author == domain.STAFF else row["user_id"]
        records = self._claim(owner, uploads) if uploads else []
        message_id = context.new_id()

        def attempt():
            ticket = self.store.get(domain.Ticket, ticket_id)
            events = ticket.reply(message_id, author, body, records, self._at(), staff_name, idempotency_key)
            self.store.save(ticket, events)

        try:
            retrying(attempt)
        except IntegrityError:
            return self._post(ticket_id, user_id, author, body, (), staff_name, idempotency_key)
        self._release(records)
        return self._message(ticket_id, message_id)

    def _message(self, ticket_id, message_id):
        row = self.store.read(message_of, message_id)
        files = [attachment_item(a) for a in self.store.read(attachments_of_message, message_id)]
        view = message_item(row, files)
        view["ticket"] = ticket_item(self._ticket_row(ticket_id))
        return view

    def add_message(self, user_id, ticket_id, body, uploads=(), idempotency_key=None):
        """The customer's reply; answered → open, closed → reopened."""
        return self._post(ticket_id, user_id, domain.CUSTOMER, body, uploads, idempotency_key=idempotency_key)

    def change_status(self, user_id, ticket_id, action, by, staff_name=None):
        """``action`` close or reopen, ``by`` customer or staff; returns the request as listed."""
        row = self._ticket_row(ticket_id, user_id)
        if by == domain.STAFF:
            domain.check_staff_name(staff_name)

        def attempt():
            ticket = self.store.get(domain.Ticket, row["ticket_id"])
            events = getattr(ticket, action)(by, self._at())
            if events:
                self.store.save(ticket, events)

        retrying(attempt)
        return ticket_item(self._ticket_row(row["ticket_id"]), staff=user_id is None)

    # -- staff -------------------------------------------------------------------------------

    def staff_reply(self, ticket_id, staff_name, body, uploads=()):
        """A staff member's answer, with files staged by staff (``stage_staff_upload``): the
        request becomes answered."""
        return self._post(ticket_id, None, domain.STAFF, body, uploads, staff_name=staff_name)

    def stage_staff_upload(self, filename, declared_type, data_base64):
        """A file for a staff reply to come (the same checks as a customer's)."""
        return self.stage_upload(STAFF_UPLOADER, filename, declared_type, data_base64)
