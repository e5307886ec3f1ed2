"""Schema and read models of the support service: requests, their messages and the
attachments' metadata (the bytes live in the blob store). Every customer query leads with
``user_id``; timestamps are the ISO strings the events carry, so a rebuild gives the same rows."""

from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.lists import NewestFirst
from common.service_schema import ServiceSchema

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
