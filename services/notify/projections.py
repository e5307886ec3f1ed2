"""Schema and read models of the notify service: ``notifications``, each customer's action
log, newest first by ``position`` (the log position of the entry's event, which is also its
Server-Sent Events id, so a reconnecting client asks for what came after it), and
``webhook_endpoints``, each customer's webhook endpoints (from ``webhook-<id>`` streams).

``webhook_deliveries`` is not a read model but the webhooks' outbox: one row per event and
endpoint, inserted in the same transaction that records the source event in the inbox (so
an accepted event is never lost and never queued twice), then claimed, sent and retried by
the delivery worker (``services/notify/webhooks.py``).
"""

import json
from pathlib import Path

import sqlalchemy as sa

from common.contracts import notification_view
from common.eventstore import Projection
from common.eventstore.schema import BIGINT
from common.service_schema import ServiceSchema

schema = ServiceSchema("notify", migrations=Path(__file__).parent / "migrations")

notifications = sa.Table(
    "notifications", schema.metadata,
    sa.Column("notification_id", sa.String(64), primary_key=True),
    sa.Column("position", BIGINT, nullable=False, unique=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("operation_id", sa.String(64), nullable=True),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("read", sa.Boolean, nullable=False),
    sa.Index("ix_notifications_user_position", "user_id", "position"),
    sa.Index("ix_notifications_user_session", "user_id", "session_id", "position"),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints", schema.metadata,
    sa.Column("endpoint_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("kinds", sa.Text, nullable=False),  # JSON list
    sa.Column("description", sa.String(200), nullable=True),
    sa.Column("status", sa.String(10), nullable=False),  # active, failing, deleted
    sa.Column("secret_sealed", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("failing_since", sa.String(40), nullable=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", schema.metadata,
    sa.Column("delivery_id", sa.String(32), primary_key=True),
    sa.Column("endpoint_id", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # pending, sending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("lease_until", sa.String(40), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("delivered_at", sa.String(40), nullable=True),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
)


class NotificationsProjection(Projection):
    tables = (notifications,)

    def when_notification_created(self, conn, event):
        data = event.data
        conn.execute(notifications.insert().values(
            notification_id=data["notification_id"], position=event.position, user_id=data["user_id"],
            session_id=data.get("session_id"), operation_id=data.get("operation_id"), level=data["level"],
            title=data["title"], body=data["body"], created_at=data["created_at"], read=False,
        ))

    def when_notifications_read(self, conn, event):
        conn.execute(notifications.update().where(
            notifications.c.user_id == event.stream_id.removeprefix("notifications-"),
            notifications.c.notification_id.in_(event.data["ids"])).values(read=True))

    def when_all_notifications_read(self, conn, event):
        conn.execute(notifications.update().where(
            notifications.c.user_id == event.stream_id.removeprefix("notifications-"),
            notifications.c.position <= event.data["up_to_position"]).values(read=True))


class WebhookEndpointsProjection(Projection):
    tables = (webhook_endpoints,)

    def when_webhook_endpoint_created(self, conn, event):
        data = event.data
        conn.execute(webhook_endpoints.insert().values(
            endpoint_id=data["endpoint_id"], user_id=data["user_id"], url=data["url"], kinds=json.dumps(data["kinds"]),
            description=data.get("description"), status="active", created_at=data["at"]))

    def _set(self, conn, event, **values):
        conn.execute(webhook_endpoints.update().where(
            webhook_endpoints.c.endpoint_id == event.data["endpoint_id"]).values(**values))

    def when_webhook_secret_issued(self, conn, event):
        self._set(conn, event, secret_sealed=event.data["sealed"])

    def when_webhook_endpoint_deleted(self, conn, event):
        self._set(conn, event, status="deleted", secret_sealed=None)

    def when_webhook_endpoint_failing(self, conn, event):
        self._set(conn, event, status="failing", failing_since=event.data["at"])

    def when_webhook_endpoint_recovered(self, conn, event):
        self._set(conn, event, status="active", failing_since=None)


schema.add_projection(NotificationsProjection())
schema.add_projection(WebhookEndpointsProjection())


def public(row):
    """A stored entry as the API shows it."""
    return notification_view(row, row["position"], row["read"])
