"""Webhooks (use cases): the customers' endpoints, the deliveries' outbox, and the worker
that sends them at least once.

- An endpoint (``webhook-<id>`` stream) has a URL, the kinds it hears and a signing secret,
  shown once at creation and kept sealed (``common.sealing``, ``WEBHOOK_SECRETS_KEY``).
- ``enqueue`` runs inside the transaction that records a source event in notify's inbox:
  the deliveries it makes commit with it or not at all, once per event and endpoint.
- ``run_worker`` (a managed greenthread of the service) sends what is due: at once when
  ``nudge`` says new deliveries were queued here, else every ``WEBHOOK_POLL_SECONDS`` (for
  retries, and for what another replica queued); a full batch is followed by the next at
  once, so a backlog drains at full speed.
- ``deliver_due`` claims due deliveries (a conditional update with a lease, so several
  notify replicas never send one twice at once, and a crashed one's claims come back when
  the lease runs out), sends each outside any transaction, and records the outcome: a 2xx
  is delivered; anything else is tried again after 30 s, 1 min, 2 min, … up to 2 h between
  attempts, until 24 h after the event, when the delivery fails, the endpoint is marked
  failing and the customer hears of it in the action log. A later success marks it active.
"""

import json
import logging
import time
from datetime import datetime, timedelta

import eventlet
import sqlalchemy as sa
from eventlet.queue import Empty, Full, LightQueue

from common import context
from common.errors import NotFound, ValidationFailed
from common.eventstore import ANY_VERSION, NewEvent
from services.notify import domain, webhook_rules as rules
from services.notify.projections import webhook_deliveries, webhook_endpoints

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # longer than any attempt (5 s time limit); WEBHOOK_LEASE_SECONDS
BATCH = 50
PARALLEL = 10  # attempts in flight at once: a slow receiver does not hold up the others


def stream_of(endpoint_id):
    return f"webhook-{endpoint_id}"


def endpoint_view(row):
    return {"id": row["endpoint_id"], "url": row["url"], "kinds": json.loads(row["kinds"]),
            "description": row["description"], "status": row["status"], "created_at": row["created_at"],
            "failing_since": row["failing_since"]}


def delivery_view(row):
    return {"id": row["delivery_id"], "endpoint_id": row["endpoint_id"], "event_id": row["event_id"],
            "kind": row["kind"], "status": row["status"] if row["status"] != "sending" else "pending",
            "attempts": row["attempts"], "last_status_code": row["last_status_code"],
            "last_error": row["last_error"], "created_at": row["created_at"],
            "next_attempt_at": row["next_attempt_at"] if row["status"] in ("pending", "sending") else None,
            "delivered_at": row["delivered_at"]}


class WebhookUseCases:
    def __init__(self, store, clock, box, sender, config):
        self.store = store
        self.clock = clock
        self.box = box
        self.sender = sender
        self.allow_http = _flag(config.get("WEBHOOK_ALLOW_HTTP", False))
        self.first_retry = timedelta(seconds=float(config.get("WEBHOOK_RETRY_FIRST_SECONDS") or 30))
        self.most_retry = timedelta(seconds=float(config.get("WEBHOOK_RETRY_MAX_SECONDS") or 7200))
        self.give_up_after = timedelta(seconds=float(config.get("WEBHOOK_GIVE_UP_SECONDS") or 86400))
        self.lease = timedelta(seconds=float(config.get("WEBHOOK_LEASE_SECONDS") or LEASE.total_seconds()))
        self.poll_seconds = float(config.get("WEBHOOK_POLL_SECONDS") or 0.5)
        self._wake = LightQueue(maxsize=1)
        self.running = False

    # -- endpoints ---------------------------------------------------------------------------

    def _endpoint_row(self, user_id, endpoint_id, conn):
        row = conn.execute(sa.select(webhook_endpoints).where(
            webhook_endpoints.c.endpoint_id == str(endpoint_id)[:32], webhook_endpoints.c.user_id == user_id,
            webhook_endpoints.c.status != "deleted")).mappings().first()
        if row is None:
            raise NotFound("No such webhook endpoint.")
        return row

    def create_endpoint(self, user_id, url, kinds, description=None):
        """A new endpoint; its signing secret (``secret``) is in this answer only."""
        kinds = rules.check_endpoint(url, kinds, self.allow_http)
        refused = self.sender.refusal(url)
        if refused:
            raise ValidationFailed("Webhooks cannot be sent there.", fields={"url": [refused[0].upper() + refused[1:] + "."]})
        with self.store.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(webhook_endpoints).where(
                webhook_endpoints.c.user_id == user_id, webhook_endpoints.c.status != "deleted")).scalar_one()
        if count >= rules.ENDPOINTS_PER_USER:
            raise ValidationFailed("Too many webhook endpoints.",
                                   fields={"url": [f"At most {rules.ENDPOINTS_PER_USER}: delete one first."]})
        endpoint_id, secret = "we_" + context.new_id()[:16], rules.new_secret()
        now = self.clock.now().isoformat()
        self.store.append(stream_of(endpoint_id), 0, [
            NewEvent("webhook_endpoint_created", {"endpoint_id": endpoint_id, "user_id": user_id, "url": url,
                                                  "kinds": kinds, "description": description, "at": now}),
            NewEvent("webhook_secret_issued", {"endpoint_id": endpoint_id, "sealed": self.box.seal(secret)}),
        ], metadata={"user_id": user_id})
        return dict(self.get_endpoint(user_id, endpoint_id), secret=secret)

    def get_endpoint(self, user_id, endpoint_id):
        with self.store.engine.connect() as conn:
            return endpoint_view(self._endpoint_row(user_id, endpoint_id, conn))

    def list_endpoints(self, user_id):
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_endpoints).where(
                webhook_endpoints.c.user_id == user_id, webhook_endpoints.c.status != "deleted")
                .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.endpoint_id)).mappings().all()
        return [endpoint_view(row) for row in rows]

    def delete_endpoint(self, user_id, endpoint_id):
        """Delete an endpoint: nothing more is sent to it (pending deliveries are dropped)."""
        with self.store.transaction() as tx:
            row = self._endpoint_row(user_id, endpoint_id, tx.conn)
            tx.append(stream_of(row["endpoint_id"]), ANY_VERSION, [NewEvent("webhook_endpoint_deleted", {
                "endpoint_id": row["endpoint_id"], "user_id": user_id, "at": self.clock.now().isoformat()})],
                metadata={"user_id": user_id})
            tx.conn.execute(webhook_deliveries.update().where(
                webhook_deliveries.c.endpoint_id == row["endpoint_id"],
                webhook_deliveries.c.status.in_(("pending", "sending"))).values(status="failed",
                                                                                 last_error="endpoint deleted"))

    def list_deliveries(self, user_id, endpoint_id, page=1, per_page=50):
        with self.store.engine.connect() as conn:
            row = self._endpoint_row(user_id, endpoint_id, conn)
            where = webhook_deliveries.c.endpoint_id == row["endpoint_id"]
            total = conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries).where(where)).scalar_one()
            rows = conn.execute(sa.select(webhook_deliveries).where(where)
                                .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.delivery_id)
                                .limit(per_page).offset((page - 1) * per_page)).mappings().all()
        return {"items": [delivery_view(r) for r in rows], "total": total, "page": page, "per_page": per_page}

    def send_test(self, user_id, endpoint_id):
        """Queue a ``webhook_test`` event to the endpoint (whatever kinds it hears)."""
        with self.store.transaction() as tx:
            row = self._endpoint_row(user_id, endpoint_id, tx.conn)
            event_id = rules.event_id_of(context.new_id(), "webhook_test")
            delivery_id = self._queue(tx.conn, row, event_id, "webhook_test",
                                      {"message": "A test event from your hosting panel."})
            found = tx.conn.execute(sa.select(webhook_deliveries).where(
                webhook_deliveries.c.delivery_id == delivery_id)).mappings().first()
        return delivery_view(found)

    # -- the outbox --------------------------------------------------------------------------

    def enqueue(self, tx, envelope):
        """Queue the deliveries an integration event makes (in the inbox's transaction)."""
        made = rules.webhook_events(envelope)
        if not made:
            return 0
        queued = 0
        for kind, user_id, data in made:
            rows = tx.conn.execute(sa.select(webhook_endpoints).where(
                webhook_endpoints.c.user_id == user_id, webhook_endpoints.c.status != "deleted")).mappings().all()
            for row in rows:
                if kind in json.loads(row["kinds"]):
                    self._queue(tx.conn, row, rules.event_id_of(envelope["event_id"], kind), kind, data)
                    queued += 1
        return queued

    def _queue(self, conn, endpoint, event_id, kind, data):
        now = self.clock.now().isoformat()
        delivery_id = "wd_" + context.new_id()[:16]
        conn.execute(webhook_deliveries.insert().values(
            delivery_id=delivery_id, endpoint_id=endpoint["endpoint_id"], user_id=endpoint["user_id"],
            event_id=event_id, kind=kind, body=rules.body_of(event_id, kind, data, now), status="pending",
            attempts=0, created_at=now, next_attempt_at=now))
        return delivery_id

    # -- the worker --------------------------------------------------------------------------

    def nudge(self):
        """New deliveries were committed: the worker looks now rather than at its next poll."""
        try:
            self._wake.put_nowait(True)
        except Full:
            pass  # already nudged

    def stop(self):
        """Let the delivery worker end after its current round."""
        self.running = False

    def run_worker(self):
        """Deliver until ``running`` turns false (the service's managed greenthread)."""
        self.running = True
        while self.running:
            try:
                self._wake.get(timeout=self.poll_seconds)
            except Empty:
                pass
            try:
                while self.running and self.deliver_due() >= BATCH:
                    pass  # a backlog: the next batch at once
            except Exception:  # noqa: BLE001 - the database may be back at the next round
                log.exception("webhook delivery round failed")
                eventlet.sleep(self.poll_seconds)

    def _claim(self, now):
        """Due deliveries this worker now holds (a lease; a crashed holder's come back)."""
        stamp, lease = now.isoformat(), (now + self.lease).isoformat()
        due = sa.or_(
            sa.and_(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= stamp),
            sa.and_(webhook_deliveries.c.status == "sending", webhook_deliveries.c.lease_until <= stamp))
        claimed = []
        with self.store.engine.begin() as conn:
            candidates = conn.execute(sa.select(webhook_deliveries.c.delivery_id).where(due)
                                      .order_by(webhook_deliveries.c.next_attempt_at).limit(BATCH)).scalars().all()
            for delivery_id in candidates:
                taken = conn.execute(webhook_deliveries.update().where(
                    webhook_deliveries.c.delivery_id == delivery_id, due).values(
                    status="sending", lease_until=lease)).rowcount
                if taken:
                    claimed.append(delivery_id)
            if not claimed:
                return []
            rows = conn.execute(sa.select(webhook_deliveries, webhook_endpoints.c.url,
                                          webhook_endpoints.c.secret_sealed, webhook_endpoints.c.status.label("endpoint_status"))
                                .select_from(webhook_deliveries.join(
                                    webhook_endpoints, webhook_endpoints.c.endpoint_id == webhook_deliveries.c.endpoint_id))
                                .where(webhook_deliveries.c.delivery_id.in_(claimed))).mappings().all()
        return [dict(row) for row in rows]

    def deliver_due(self):
        """Send every due delivery once (up to ``PARALLEL`` at a time); how many were attempted."""
        claimed = self._claim(self.clock.now())
        pool = eventlet.GreenPool(PARALLEL)
        for delivery in claimed:
            pool.spawn_n(self._attempt_logged, delivery)
        pool.waitall()
        return len(claimed)

    def _attempt_logged(self, delivery):
        try:
            self._attempt(delivery)
        except Exception:  # noqa: BLE001 - its lease runs out and it is tried again
            log.exception("webhook delivery attempt crashed", extra={"delivery_id": delivery["delivery_id"]})

    def _attempt(self, delivery):
        if delivery["endpoint_status"] == "deleted" or not delivery["secret_sealed"]:
            self._finish(delivery, "failed", error="endpoint deleted")
            return
        secret = self.box.unseal(delivery["secret_sealed"])
        body = bytes(delivery["body"])
        headers = {"Content-Type": "application/json", rules.EVENT_ID_HEADER: delivery["event_id"],
                   rules.SIGNATURE_HEADER: rules.signature(secret, time.time(), body)}
        outcome = self.sender.send(delivery["url"], headers, body)
        now = self.clock.now()
        attempts = delivery["attempts"] + 1
        if outcome.delivered:
            self._finish(delivery, "delivered", outcome=outcome, attempts=attempts, delivered_at=now.isoformat())
            if delivery["endpoint_status"] == "failing":
                self._endpoint_event(delivery, "webhook_endpoint_recovered", now)
            return
        if now - datetime.fromisoformat(delivery["created_at"]) >= self.give_up_after:
            self._finish(delivery, "failed", outcome=outcome, attempts=attempts)
            if delivery["endpoint_status"] != "failing":
                self._endpoint_failing(delivery, outcome, now)
            return
        retry_at = now + rules.retry_delay(attempts, self.first_retry, self.most_retry)
        self._finish(delivery, "pending", outcome=outcome, attempts=attempts, next_attempt_at=retry_at.isoformat())

    def _finish(self, delivery, status, outcome=None, error=None, **values):
        if outcome is not None:
            values.update(last_status_code=outcome.status_code, last_error=(outcome.error or None) and outcome.error[:300])
        elif error:
            values["last_error"] = error
        with self.store.engine.begin() as conn:
            conn.execute(webhook_deliveries.update().where(
                webhook_deliveries.c.delivery_id == delivery["delivery_id"]).values(
                status=status, lease_until=None, **values))

    def _endpoint_event(self, delivery, kind, now, **data):
        self.store.append(stream_of(delivery["endpoint_id"]), ANY_VERSION, [NewEvent(kind, {
            "endpoint_id": delivery["endpoint_id"], "user_id": delivery["user_id"], "at": now.isoformat(), **data})],
            metadata={"user_id": delivery["user_id"]})

    def _endpoint_failing(self, delivery, outcome, now):
        """Mark the endpoint failing and tell the customer in the action log."""
        why = f"HTTP {outcome.status_code}" if outcome.status_code else outcome.error
        hours = self.give_up_after.total_seconds() / 3600
        entry = {"user_id": delivery["user_id"], "session_id": None, "operation_id": None, "level": "error",
                 "title": "Webhook endpoint failing",
                 "body": f"{delivery['url']} has not accepted a delivery for {hours:g} h (last: {why}); "
                         "failed deliveries are listed with the endpoint."}
        with self.store.transaction() as tx:
            tx.append(stream_of(delivery["endpoint_id"]), ANY_VERSION, [NewEvent("webhook_endpoint_failing", {
                "endpoint_id": delivery["endpoint_id"], "user_id": delivery["user_id"], "at": now.isoformat(),
                "last_error": why})], metadata={"user_id": delivery["user_id"]})
            tx.append(f"notifications-{delivery['user_id']}", ANY_VERSION, [
                domain.recorded(context.new_id(), entry, None, now.isoformat())],
                metadata={"user_id": delivery["user_id"]})
        log.warning("webhook endpoint failing", extra={"endpoint_id": delivery["endpoint_id"], "reason": why})


def _flag(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")
