"""The outbox relay: the event log *is* the outbox.

``OutboxRelay.relay_once`` reads the events after its stored checkpoint, publishes the
integration ones in position order as one batch (the publisher pipelines them on one
channel and waits for the broker's confirms of the whole batch, instead of one confirm
round trip per event) and only then advances the checkpoint — past every event when the
whole batch was confirmed; when only a prefix was (a nack, a return, a lost connection:
``common.messaging.PublishIncomplete``), only up to the first unconfirmed event, and the
error is raised so that the next run publishes again from there. Nothing is skipped. A
crash between publish and checkpoint publishes the same events again on the next run —
consumers deduplicate by ``event_id`` (the inbox) — so an event can be published twice but
never lost.

Order: the events go out in log order on one channel, and the publisher never has two
events of one stream unconfirmed at a time, so a stream's events reach each queue in
order, even when one is nacked and published again.

Commits that publish nothing: with ``idle_advance_after=N`` the relay neither takes its
lease nor moves its checkpoint (two writes) for events that are all internal until it is
``N`` positions behind; a single indexed read tells it whether an integration event waits.
``None`` (the default) moves past them at once, as before.

Replicas of a service share one checkpoint row; a lease in that row lets one relay at a time
publish, so the order of the log is the order on the wire. The lease is short
(``LEASE_SECONDS``) and renewed while a batch waits for its confirms, so a relay that died
hands over within seconds (issue 20: a killed service's replacement waited a minute for
the old lease); on the same machine the owner is named by host and process id, and a
relay whose owner process is gone takes the lease over at once.
"""

import contextlib
import logging
import os
import socket
import threading
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common import context
from common.contracts import envelope
from common.eventstore.store import utcnow
from common.messaging import PublishIncomplete

log = logging.getLogger(__name__)

# A crashed relay's lease passes to another replica after this long; a live one renews it
# every third of it while a batch waits for its confirms (up to 30 s), so it never runs out
# under a relay that is still publishing.
LEASE_SECONDS = 10
HOST = socket.gethostname()


def owner_name():
    """``host:pid:random`` — who holds a lease (a process may run several relays)."""
    return f"{HOST}:{os.getpid()}:{context.new_id()[:8]}"


def owner_is_dead(owner):
    """True when ``owner`` names a process of this machine that no longer runs (so its
    lease can be taken over now instead of when it runs out)."""
    try:
        host, pid, _ = str(owner).rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != HOST or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class OutboxRelay:
    def __init__(self, store, publisher, source, types, name="outbox", batch=500, lease_seconds=LEASE_SECONDS,
                 idle_advance_after=None):
        """``publisher(envelopes)`` must return only once the broker confirmed them all, or
        raise (``PublishIncomplete`` when a prefix of them was confirmed). ``lease_seconds``
        must outlast one batch, the publisher's wait for confirms included."""
        self.store = store
        self.idle_advance_after = idle_advance_after
        self.publisher = publisher
        self.source = source
        self.types = frozenset(types)
        self.name = name
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = owner_name()
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
        """Take (or renew) the lease: the checkpoint's position, or None when another
        replica holds it. One conditional UPDATE, so two replicas that find it free at the
        same moment cannot both take it (PostgreSQL re-checks the condition once the first
        one commits; SQLite writes one at a time)."""
        table = self.store.tables.relay_checkpoints
        now = utcnow()
        with self.store.transaction() as tx:
            holder = tx.conn.execute(sa.select(table.c.owner).where(table.c.name == self.name)).scalar_one_or_none()
            free = [table.c.owner.is_(None), table.c.owner == self.owner,
                    table.c.lease_until.is_(None), table.c.lease_until <= now]
            if holder is not None and holder != self.owner and owner_is_dead(holder):
                free.append(table.c.owner == holder)  # its process is gone: no need to wait
                log.info("outbox relay %s takes over the lease of %s, which is no longer running", self.name, holder)
            taken = tx.conn.execute(
                table.update()
                .where(table.c.name == self.name, sa.or_(*free))
                .values(owner=self.owner, lease_until=now + self.lease)
            )
            if taken.rowcount != 1:
                return None
            return tx.conn.execute(sa.select(table.c.position).where(table.c.name == self.name)).scalar_one()

    def _advance(self, position):
        """Move the checkpoint to ``position`` and renew the lease; False when the lease
        was lost meanwhile (another replica took it over after it ran out: that replica
        publishes from the checkpoint again, and consumers' inboxes drop the repeats)."""
        table = self.store.tables.relay_checkpoints
        with self.store.transaction() as tx:
            moved = tx.conn.execute(
                table.update()
                .where(table.c.name == self.name, table.c.owner == self.owner)
                .values(position=position, lease_until=utcnow() + self.lease)
            ).rowcount == 1
        if not moved:
            log.warning("outbox relay %s lost its lease; another replica publishes from the checkpoint", self.name)
        return moved

    def release(self):
        table = self.store.tables.relay_checkpoints
        with self.store.transaction() as tx:
            tx.conn.execute(
                table.update()
                .where(table.c.name == self.name, table.c.owner == self.owner)
                .values(owner=None, lease_until=None)
            )

    def _integration_waiting(self, position):
        """True when an integration event follows ``position``."""
        events = self.store.tables.events
        with self.store.engine.connect() as conn:
            return conn.execute(
                sa.select(events.c.position).where(
                    events.c.position > position, events.c.type.in_(list(self.types))
                ).order_by(events.c.position).limit(1)
            ).first() is not None

    def relay_once(self):
        """Publish one batch; returns how many events were published (0: nothing to do, or
        another replica holds the lease). An idle relay only reads: it writes (takes the
        lease) when events wait."""
        return self._relay_batch()[0]

    def _relay_batch(self):
        """One batch: (events published, whether the checkpoint moved)."""
        checkpoint = self.checkpoint()
        last = self.store.last_position()
        if last <= checkpoint:
            return 0, False
        if (self.idle_advance_after is not None and last - checkpoint < self.idle_advance_after
                and not self._integration_waiting(checkpoint)):
            return 0, False  # only internal events wait: no writes until far behind
        position = self._acquire_lease()
        if position is None:
            return 0, False
        events = self.store.read_after(position, limit=self.batch)
        if not events:
            return 0, False
        pending = [(event, envelope(event, self.source)) for event in events if event.type in self.types]
        if pending:
            try:
                with self._lease_kept():
                    self.publisher([item for _, item in pending])
            except PublishIncomplete as incomplete:
                self._advance_before(events, pending[min(incomplete.confirmed, len(pending) - 1)][0].position)
                raise
        return len(pending), self._advance(events[-1].position)

    def _renew(self):
        """Extend the lease this relay holds (False when it no longer holds it)."""
        table = self.store.tables.relay_checkpoints
        with self.store.transaction() as tx:
            return tx.conn.execute(
                table.update().where(table.c.name == self.name, table.c.owner == self.owner)
                .values(lease_until=utcnow() + self.lease)
            ).rowcount == 1

    @contextlib.contextmanager
    def _lease_kept(self):
        """While the body runs (a batch waiting for its confirms), renew the lease every
        third of it."""
        done = threading.Event()

        def keep():
            while not done.wait(self.lease.total_seconds() / 3):
                try:
                    if not self._renew():
                        return
                except Exception:  # noqa: BLE001 - the next renewal (or the lease's end) decides
                    log.warning("could not renew the outbox lease of %s", self.name, exc_info=True)

        keeper = threading.Thread(target=keep, name=f"lease-{self.name}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join(timeout=5)

    def _advance_before(self, events, first_unconfirmed):
        """Move the checkpoint past every event before ``first_unconfirmed`` (those were
        confirmed, or publish nothing), so that a retry starts at that event."""
        before = [event.position for event in events if event.position < first_unconfirmed]
        if before:
            self._advance(before[-1])

    def drain(self):
        """Relay until nothing is left; returns the number published."""
        total = 0
        while True:
            published, moved = self._relay_batch()
            total += published
            if not moved:
                return total
