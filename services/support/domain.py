"""The support domain: a customer's support request (ticket) and its conversation. Pure code.

``Ticket`` (``ticket-<id>``) is opened by a customer with a subject, a description (its first
message), optional attachments and optionally one of their servers. Then customers and
staff add messages, and either side may close it or reopen it.

Statuses and what moves them (``TRANSITIONS``)::

    open      --staff reply-->            answered
    reopened  --staff reply-->            answered
    answered  --customer reply-->         open
    closed    --customer reply-->         reopened
    open|answered|reopened --close-->     closed       (customer or staff)
    closed    --reopen-->                 reopened     (customer or staff)

A staff reply to a closed request is refused (reopen it first); closing a closed request
or a reply that keeps the status changes nothing but the conversation.

Each command records private facts, which carry everything the request is made of (the
texts, the attachments' metadata and where their bytes are), plus the public integration
events of ``common.contracts`` (``ticket_opened``, ``ticket_message_added``,
``ticket_status_changed``) with exactly their documented fields — so message texts never
leave the service, and notify learns only what it shows.
"""

from dataclasses import dataclass, field

from common.errors import Conflict, ValidationFailed, error_with_code
from common.eventstore import Aggregate, NewEvent

OPEN, ANSWERED, CLOSED, REOPENED = "open", "answered", "closed", "reopened"
STATUSES = (OPEN, ANSWERED, CLOSED, REOPENED)
# The list filters of R-SUP-1: "open" is every request that is not closed.
FILTERS = ("open", "closed", "all")
CUSTOMER, STAFF = "customer", "staff"

SUBJECT_MAX = 200
BODY_MAX = 20000
STAFF_NAME_MAX = 64

# (status, action) -> new status; an absent pair is refused.
TRANSITIONS = {
    (OPEN, "staff_reply"): ANSWERED,
    (REOPENED, "staff_reply"): ANSWERED,
    (ANSWERED, "staff_reply"): ANSWERED,
    (OPEN, "customer_reply"): OPEN,
    (REOPENED, "customer_reply"): REOPENED,
    (ANSWERED, "customer_reply"): OPEN,
    (CLOSED, "customer_reply"): REOPENED,
    (OPEN, "close"): CLOSED,
    (ANSWERED, "close"): CLOSED,
    (REOPENED, "close"): CLOSED,
    (CLOSED, "close"): CLOSED,
    (CLOSED, "reopen"): REOPENED,
}


def _text(value, name, maximum, problems, required=True):
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        problems[name] = ["Must be text."]
    elif required and not text:
        problems[name] = ["Required."]
    elif len(text) > maximum:
        problems[name] = [f"At most {maximum} characters."]
    return text


def check_request(subject, description):
    """A new request's subject and description, trimmed; ``ValidationFailed`` naming them."""
    problems = {}
    subject = _text(subject, "subject", SUBJECT_MAX, problems)
    description = _text(description, "description", BODY_MAX, problems)
    if "subject" not in problems and any(ch in subject for ch in "\r\n"):
        problems["subject"] = ["One line."]
    if problems:
        raise ValidationFailed("The request is invalid.", fields=problems)
    return subject, description


def check_body(body):
    problems = {}
    body = _text(body, "body", BODY_MAX, problems)
    if problems:
        raise ValidationFailed("The message is invalid.", fields=problems)
    return body


def check_staff_name(name):
    problems = {}
    name = _text(name, "staff_name", STAFF_NAME_MAX, problems)
    if problems:
        raise ValidationFailed("Say who you are.", fields=problems)
    return name


def check_filter(status):
    if status not in FILTERS:
        raise ValidationFailed("Unknown status filter.", fields={"status": [f"One of {', '.join(FILTERS)}."]})
    return status


def attachment_record(attachment):
    """The metadata of an attachment as events keep it (``blob_key`` stays inside)."""
    return {key: attachment[key] for key in ("id", "filename", "content_type", "size", "sha256", "blob_key")}


@dataclass
class Ticket(Aggregate):
    stream_prefix = "ticket"

    ticket_id: str
    version: int = 0
    user_id: str = None
    subject: str = None
    server_id: str = None
    status: str = None
    messages: list = field(default_factory=list)

    # -- folding -----------------------------------------------------------------------------

    def _on_ticket_submitted(self, data):
        self.user_id, self.subject, self.server_id = data["user_id"], data["subject"], data.get("server_id")
        self.status = OPEN

    def _on_message_posted(self, data):
        self.messages.append(data["message_id"])

    def _on_ticket_status_changed(self, data):
        self.status = data["status"]

    def _on_ticket_opened(self, data):
        pass  # the public twin of ticket_submitted

    def _on_ticket_message_added(self, data):
        pass  # the public twin of message_posted

    # -- commands ----------------------------------------------------------------------------

    @staticmethod
    def open(ticket_id, user_id, subject, description, server, message_id, attachments, at, idempotency_key=None):
        """A customer's new request; ``server`` is ``{"id", "number"}`` of one of theirs, or None."""
        subject, description = check_request(subject, description)
        server_id = server["id"] if server else None
        return [
            NewEvent("ticket_submitted", {
                "ticket_id": ticket_id, "user_id": user_id, "subject": subject, "server_id": server_id,
                "server_number": server.get("number") if server else None, "idempotency_key": idempotency_key,
                "at": at}),
            NewEvent("message_posted", {
                "message_id": message_id, "author": CUSTOMER, "staff_name": None, "body": description,
                "attachments": [attachment_record(a) for a in attachments], "idempotency_key": None, "at": at}),
            NewEvent("ticket_opened", {
                "ticket_id": ticket_id, "user_id": user_id, "subject": subject, "server_id": server_id, "at": at}),
        ]

    def _move(self, action, by, at):
        """The status change ``action`` makes (as events), or [] when it keeps the status."""
        new = TRANSITIONS.get((self.status, action))
        if new is None:
            if action == "staff_reply":
                raise error_with_code(Conflict, "ticket_closed", "The request is closed: reopen it before replying.")
            raise error_with_code(Conflict, "invalid_transition",
                                  f"Only a closed request can be reopened; this one is {self.status}.",
                                  status=self.status)
        if new == self.status:
            return []
        return [NewEvent("ticket_status_changed", {
            "ticket_id": self.ticket_id, "user_id": self.user_id, "subject": self.subject, "status": new,
            "previous_status": self.status, "by": by, "at": at})]

    def reply(self, message_id, author, body, attachments, at, staff_name=None, idempotency_key=None):
        """A message from the customer or from staff (``staff_name`` says who)."""
        body = check_body(body)
        if author == STAFF:
            staff_name = check_staff_name(staff_name)
        elif author != CUSTOMER:
            raise ValueError(f"unknown author {author!r}")
        else:
            staff_name = None
        moves = self._move(f"{author}_reply", author, at)
        return [
            NewEvent("message_posted", {
                "message_id": message_id, "author": author, "staff_name": staff_name, "body": body,
                "attachments": [attachment_record(a) for a in attachments], "idempotency_key": idempotency_key,
                "at": at}),
            NewEvent("ticket_message_added", {
                "ticket_id": self.ticket_id, "user_id": self.user_id, "subject": self.subject,
                "message_id": message_id, "author": author, "staff_name": staff_name,
                "attachments": len(attachments), "at": at}),
        ] + moves

    def close(self, by, at):
        return self._move("close", by, at)

    def reopen(self, by, at):
        return self._move("reopen", by, at)
