"""The outbox relay: the event log *is* the outbox.

``OutboxRelay.relay_once`` reads the events after its stored checkpoint, publishes the
integration ones in position order (the publisher waits for the broker's confirm of each)
and only then advances the checkpoint. A crash between publish and checkpoint publishes the
same events again on the next run — consumers deduplicate by ``event_id`` (the inbox) — so
an event can be published twice but never lost.

Replicas of a service share one checkpoint row; a lease in that row lets one relay at a time
publish, so the order of the log is the order on the wire.
"""

import logging
import socket
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common import context
from common.contracts import envelope
from common.eventstore.store import as_utc, utcnow

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, store, publisher, source, types, name="outbox", batch=500, lease_seconds=15):
        """``publisher(envelopes)`` must return only once the broker confirmed them all."""
        self.store = store
        self.publisher = publisher
        self.source = source
        self.types = frozenset(types)
        self.name = name
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = f"{socket.gethostname()}:{context.new_id()[:12]}"
        self._ensure_row()

    def _ensure_row(self):
        table = self.store.tables.relay_checkpoints
        try:
            with self.store.transaction() as tx:
                exists = tx.conn.execute(
                    sa.select(table.c.name).where(table.c.name == self.name)
                ).first()
                if exists is None:
                    tx.conn.execute(table.insert().values(name=self.name, position=0))
        except IntegrityError:
            pass  # another replica created it first

    def checkpoint(self):
        table = self.store.tables.relay_checkpoints
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(table.c.position).where(table.c.name == self.name)
            ).scalar_one()

    def backlog(self):
        """How many integration events wait to be published."""
        events = self.store.tables.events
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(events).where(
                    events.c.position > self.checkpoint(), events.c.type.in_(list(self.types))
                )
            ).scalar_one()

    def _acquire_lease(self):
        table = self.store.tables.relay_checkpoints
        now = utcnow()
        with self.store.transaction() as tx:
            row = tx.conn.execute(
                sa.select(table.c.owner, table.c.lease_until, table.c.position).where(
                    table.c.name == self.name
                )
            ).one()
            lease_until = as_utc(row.lease_until)
            if row.owner not in (None, self.owner) and lease_until and lease_until > now:
                return None
            tx.conn.execute(
                table.update()
                .where(table.c.name == self.name)
                .values(owner=self.owner, lease_until=now + self.lease)
            )
            return row.position

    def _advance(self, position):
        table = self.store.tables.relay_checkpoints
        with self.store.transaction() as tx:
            tx.conn.execute(
                table.update()
                .where(table.c.name == self.name, table.c.owner == self.owner)
                .values(position=position, lease_until=utcnow() + self.lease)
            )

    def release(self):
        table = self.store.tables.relay_checkpoints
        with self.store.transaction() as tx:
            tx.conn.execute(
                table.update()
                .where(table.c.name == self.name, table.c.owner == self.owner)
                .values(owner=None, lease_until=None)
            )

    def relay_once(self):
        """Publish one batch; returns how many events were published (0: nothing to do, or
        another replica holds the lease). An idle relay only reads: it writes (takes the
        lease) when events wait."""
        if self.store.last_position() <= self.checkpoint():
            return 0
        position = self._acquire_lease()
        if position is None:
            return 0
        events = self.store.read_after(position, limit=self.batch)
        if not events:
            return 0
        envelopes = [envelope(event, self.source) for event in events if event.type in self.types]
        if envelopes:
            self.publisher(envelopes)
        self._advance(events[-1].position)
        return len(envelopes)

    def drain(self):
        """Relay until nothing is left; returns the number published."""
        total = 0
        while True:
            published = self.relay_once()
            total += published
            if not published and self.store.read_after(self.checkpoint(), limit=1) == []:
                return total
            if not published and self._lease_held_elsewhere():
                return total

    def _lease_held_elsewhere(self):
        table = self.store.tables.relay_checkpoints
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.owner, table.c.lease_until).where(table.c.name == self.name)
            ).one()
        return row.owner not in (None, self.owner) and as_utc(row.lease_until) > utcnow()
