"""Schema and read model of the notify service: ``notifications``, each customer's action
log, newest first by ``position`` (the log position of the entry's event, which is also its
Server-Sent Events id, so a reconnecting client asks for what came after it)."""

import sqlalchemy as sa

from common.eventstore import Projection
from common.eventstore.schema import BIGINT
from common.service import ServiceSchema

schema = ServiceSchema("notify")

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


schema.add_projection(NotificationsProjection())


def public(row):
    return {"id": row["notification_id"], "position": row["position"], "operation_id": row["operation_id"],
            "session_id": row["session_id"], "level": row["level"], "title": row["title"], "body": row["body"],
            "created_at": row["created_at"], "read": row["read"]}
