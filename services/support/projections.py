"""Schema, read models and queries of the support service: requests, their messages and the
attachments' metadata (the bytes live in the blob store). Every customer query leads with
``user_id``; timestamps are the ISO strings the events carry, so a rebuild gives the same rows."""

from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.lists import NewestFirst
from common.service_schema import ServiceSchema
from services.support.domain import CLOSED

schema = ServiceSchema("support", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

tickets = sa.Table(
    "tickets", metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("server_id", sa.String(64), nullable=True),
    sa.Column("server_number", sa.String(32), nullable=True),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("last_author", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_tickets_user_idempotency_key"),
    # The customer's list in its order, newest activity first (a backward scan): a cursor
    # page starts where the last one ended, however deep (issue 21).
    sa.Index("ix_tickets_user_updated_id", "user_id", "updated_at", "ticket_id"),
)
ticket_messages = sa.Table(
    "ticket_messages", metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("author", sa.String(16), nullable=False),
    sa.Column("staff_name", sa.String(64), nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.UniqueConstraint("ticket_id", "idempotency_key", name="uq_ticket_messages_idempotency_key"),
)
ticket_attachments = sa.Table(
    "ticket_attachments", metadata,
    sa.Column("attachment_id", sa.String(64), primary_key=True),
    sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
    sa.Column("message_id", sa.String(64), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("blob_key", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)


# The lists' order: newest activity first; requests active at the same instant by id.
list_order = NewestFirst(tickets.c.updated_at, tickets.c.ticket_id)
# How many blob keys one IN (…) asks about.
KEYS_PER_QUERY = 500


def ticket_of(conn, ticket_id, user_id=None):
    """The request (only if it is ``user_id``'s, when given), None when there is none."""
    where = [tickets.c.ticket_id == str(ticket_id)]
    if user_id is not None:
        where.append(tickets.c.user_id == user_id)
    return conn.execute(sa.select(tickets).where(*where)).mappings().first()


def ticket_by_key(conn, user_id, idempotency_key):
    """The customer's request opened with ``idempotency_key``, None when there is none."""
    return conn.execute(sa.select(tickets).where(
        tickets.c.user_id == user_id, tickets.c.idempotency_key == idempotency_key)).mappings().first()


def ticket_page(conn, user_id, status, page, per_page, position=None):
    """``(rows, total, next_cursor)`` of ``user_id``'s requests (None: everyone's) in ``status``."""
    where = []
    if user_id is not None:
        where.append(tickets.c.user_id == user_id)
    if status == "open":
        where.append(tickets.c.status != CLOSED)
    elif status == "closed":
        where.append(tickets.c.status == CLOSED)
    return list_order.read(conn, where, page, per_page, position)


def messages_of(conn, ticket_id):
    """The request's messages in the order they were posted."""
    return conn.execute(sa.select(ticket_messages).where(ticket_messages.c.ticket_id == ticket_id)
                        .order_by(ticket_messages.c.position)).mappings().all()


def message_of(conn, message_id):
    """The message, None when there is none."""
    return conn.execute(sa.select(ticket_messages).where(ticket_messages.c.message_id == message_id)).mappings().first()


def message_by_key(conn, ticket_id, idempotency_key):
    """The id of the request's message posted with ``idempotency_key``, None when there is none."""
    return conn.execute(sa.select(ticket_messages.c.message_id).where(
        ticket_messages.c.ticket_id == ticket_id, ticket_messages.c.idempotency_key == idempotency_key)).scalar()


def _attachments(conn, *where):
    return conn.execute(sa.select(ticket_attachments).where(*where)
                        .order_by(ticket_attachments.c.filename)).mappings().all()


def attachments_of_ticket(conn, ticket_id):
    """The request's attachments, by file name."""
    return _attachments(conn, ticket_attachments.c.ticket_id == ticket_id)


def attachments_of_message(conn, message_id):
    """The message's attachments, by file name."""
    return _attachments(conn, ticket_attachments.c.message_id == message_id)


def attachment_of(conn, ticket_id, attachment_id):
    """The request's attachment, None when it has no such attachment."""
    return conn.execute(sa.select(ticket_attachments).where(
        ticket_attachments.c.attachment_id == str(attachment_id),
        ticket_attachments.c.ticket_id == str(ticket_id))).mappings().first()


def any_attached(conn, blob_keys):
    """Whether any of these blob keys is already an attachment's file."""
    return conn.execute(sa.select(ticket_attachments.c.attachment_id).where(
        ticket_attachments.c.blob_key.in_(blob_keys))).first() is not None


def attached_keys(conn, blob_keys):
    """Those of these blob keys that are attachments' files (a set)."""
    attached = set()
    for start in range(0, len(blob_keys), KEYS_PER_QUERY):
        chunk = blob_keys[start:start + KEYS_PER_QUERY]
        attached.update(conn.execute(sa.select(ticket_attachments.c.blob_key).where(
            ticket_attachments.c.blob_key.in_(chunk))).scalars())
    return attached


def _ticket_id(event):
    return event.stream_id.removeprefix("ticket-")


class SupportProjection(Projection):
    tables = (tickets, ticket_messages, ticket_attachments)

    def when_ticket_submitted(self, conn, event):
        data = event.data
        conn.execute(tickets.insert().values(
            ticket_id=data["ticket_id"], user_id=data["user_id"], subject=data["subject"], status="open",
            server_id=data.get("server_id"), server_number=data.get("server_number"), message_count=0,
            last_author="customer", created_at=data["at"], updated_at=data["at"],
            idempotency_key=data.get("idempotency_key")))

    def when_message_posted(self, conn, event):
        data, ticket_id = event.data, _ticket_id(event)
        conn.execute(ticket_messages.insert().values(
            message_id=data["message_id"], ticket_id=ticket_id, position=event.position, author=data["author"],
            staff_name=data.get("staff_name"), body=data["body"], created_at=data["at"],
            idempotency_key=data.get("idempotency_key")))
        for attachment in data["attachments"]:
            conn.execute(ticket_attachments.insert().values(
                attachment_id=attachment["id"], ticket_id=ticket_id, message_id=data["message_id"],
                filename=attachment["filename"], content_type=attachment["content_type"], size=attachment["size"],
                sha256=attachment["sha256"], blob_key=attachment["blob_key"], created_at=data["at"]))
        conn.execute(tickets.update().where(tickets.c.ticket_id == ticket_id).values(
            message_count=tickets.c.message_count + 1, last_author=data["author"], updated_at=data["at"]))

    def when_ticket_status_changed(self, conn, event):
        data = event.data
        conn.execute(tickets.update().where(tickets.c.ticket_id == _ticket_id(event)).values(
            status=data["status"], updated_at=data["at"]))


schema.add_projection(SupportProjection())
