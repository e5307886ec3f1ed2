"""The notify service's use cases: record entries from other services' events (once each),
list them, mark them read; the webhooks are in ``webhooks.py``."""

import sqlalchemy as sa

from common import context
from common.errors import ValidationFailed
from common.eventstore import ANY_VERSION
from common.paging import newest_first_page, position_cursor
from services.notify import domain
from services.notify.projections import notifications, public


class NotifyUseCases:
    def __init__(self, store, clock, webhooks=None):
        self.store = store
        self.clock = clock
        self.webhooks = webhooks  # services.notify.webhooks.WebhookUseCases

    def record(self, consumer, envelope):
        """Turn an integration event into an action-log entry and the webhook deliveries it
        makes, exactly once per event (one transaction with the inbox)."""
        entry = domain.entry_for(envelope)
        with self.store.transaction() as tx:
            if not tx.record_inbox(consumer, envelope["event_id"]):
                return None  # a redelivery: already recorded
            queued = self.webhooks.enqueue(tx, envelope) if self.webhooks is not None else 0
            event = None
            if entry is not None and entry["user_id"]:
                event = domain.recorded(context.new_id(), entry, envelope["event_id"], self.clock.now().isoformat())
                tx.append(f"notifications-{entry['user_id']}", ANY_VERSION, [event],
                          metadata={"user_id": entry["user_id"], "session_id": entry.get("session_id")})
        if queued:
            self.webhooks.nudge()
        return event.data if event is not None else None

    def list_notifications(self, user_id, session_id, scope="session", page=1, per_page=50, cursor=None):
        """The action log, newest first: by ``page``, or by ``cursor`` (the previous
        answer's ``next_cursor``: the entries older than its last one, at the same cost
        however far back)."""
        if scope not in ("session", "all"):
            raise ValidationFailed("Unknown scope.", fields={"scope": ["session or all."]})
        before = position_cursor(cursor)
        where = [notifications.c.user_id == user_id]
        if scope == "session":
            where.append(notifications.c.session_id == session_id)
        query = sa.select(notifications).where(*where).order_by(notifications.c.position.desc()).limit(per_page + 1)
        query = query.where(notifications.c.position < before) if before is not None else \
            query.offset((page - 1) * per_page)
        with self.store.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(notifications).where(*where)).scalar_one()
            unread = conn.execute(sa.select(sa.func.count()).select_from(notifications).where(
                *where, notifications.c.read.is_(False))).scalar_one()
            rows = conn.execute(query).mappings().all()
        rows, next_cursor = newest_first_page(rows, per_page, lambda row: row["position"])
        return {"items": [public(r) for r in rows], "total": total, "page": page, "per_page": per_page,
                "unread": unread, "next_cursor": next_cursor}

    def notifications_after(self, user_id, position, limit=500):
        """Entries after ``position`` in order: what a reconnecting stream missed."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(notifications).where(
                notifications.c.user_id == user_id, notifications.c.position > position)
                .order_by(notifications.c.position).limit(limit)).mappings().all()
        return [public(r) for r in rows]

    def mark_read(self, user_id, ids=None, everything=False):
        if everything:
            with self.store.engine.connect() as conn:
                last = conn.execute(sa.select(sa.func.max(notifications.c.position)).where(
                    notifications.c.user_id == user_id)).scalar() or 0
            event = domain.marked_all_read(last)
        else:
            event = domain.marked_read(ids or [])
        self.store.append(f"notifications-{user_id}", ANY_VERSION, [event], metadata={"user_id": user_id})
