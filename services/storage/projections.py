"""Schema, read models and queries of the storage service.

- ``storages``: one row per storage (no secret: the sealed secret stays in the event log);
- ``buckets``: one row per bucket, keyed by (location, name) — a location's cluster has one
  bucket namespace, so this is also what refuses a name already in use there;
- ``usage_samples``: the usage time series. Not a projection: samples are measurements the
  sampler takes from the backend (bytes stored, traffic counters), not facts of the log, so
  they are written directly and ``rebuild-projections`` leaves them alone.
"""

from pathlib import Path

import sqlalchemy as sa

from common.eventstore import Projection
from common.service_schema import ServiceSchema
from services.storage.domain import ACTIVE, DELETED

schema = ServiceSchema("storage", migrations=Path(__file__).parent / "migrations")
metadata = schema.metadata

storages = sa.Table(
    "storages", metadata,
    sa.Column("storage_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("limit_bytes", sa.BigInteger, nullable=False),
    sa.Column("location", sa.String(8), nullable=False),
    sa.Column("s3uid", sa.String(32), nullable=False, unique=True),
    sa.Column("iam_user", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("access_key", sa.String(128), nullable=True),
    sa.Column("writes_suspended", sa.Boolean, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_storages_user_idempotency_key"),
)
buckets = sa.Table(
    "buckets", metadata,
    sa.Column("location", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("storage_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("operation_id", sa.String(100), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)
usage_samples = sa.Table(
    "usage_samples", metadata,
    sa.Column("sample_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("storage_id", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # unix seconds
    sa.Column("used_bytes", sa.BigInteger, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=True),  # traffic since the previous sample; None: unmeasured
    sa.Column("bytes_out", sa.BigInteger, nullable=True),
    sa.Column("meter_epoch", sa.String(64), nullable=True),  # the meter's counters as read (for the next delta)
    sa.Column("meter_in", sa.BigInteger, nullable=True),
    sa.Column("meter_out", sa.BigInteger, nullable=True),
    sa.Index("ix_usage_samples_storage_at", "storage_id", "at"),
)


def storage_of(conn, user_id, storage_id):
    """The customer's storage unless deleted, None when there is none."""
    return conn.execute(sa.select(storages).where(
        storages.c.storage_id == storage_id, storages.c.user_id == user_id,
        storages.c.status != DELETED)).mappings().first()


def storage_by_key(conn, user_id, idempotency_key):
    """The customer's storage created with ``idempotency_key``, None when there is none."""
    return conn.execute(sa.select(storages).where(
        storages.c.user_id == user_id, storages.c.idempotency_key == idempotency_key)).mappings().first()


def storage_page(conn, user_id, page, per_page):
    """``(rows, total)``: a page of the customer's storages not deleted, oldest first (ties by name)."""
    where = [storages.c.user_id == user_id, storages.c.status != DELETED]
    total = conn.execute(sa.select(sa.func.count()).select_from(storages).where(*where)).scalar_one()
    rows = conn.execute(sa.select(storages).where(*where).order_by(storages.c.created_at, storages.c.name)
                        .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    return rows, total


def active_storage_ids(conn, storage_id=None):
    """The ids of the active storages (only ``storage_id``, when given), in id order."""
    query = sa.select(storages.c.storage_id).where(storages.c.status == ACTIVE)
    if storage_id is not None:
        query = query.where(storages.c.storage_id == storage_id)
    return conn.execute(query.order_by(storages.c.storage_id)).scalars().all()


def bucket_count(conn, storage_id):
    """How many buckets the storage has (any status)."""
    return conn.execute(sa.select(sa.func.count()).select_from(buckets).where(
        buckets.c.storage_id == storage_id)).scalar_one()


def bucket_page(conn, storage_id, page, per_page):
    """``(rows, total)``: a page of the storage's buckets by name."""
    where = [buckets.c.storage_id == storage_id]
    total = conn.execute(sa.select(sa.func.count()).select_from(buckets).where(*where)).scalar_one()
    rows = conn.execute(sa.select(buckets).where(*where).order_by(buckets.c.name)
                        .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    return rows, total


def used_bytes(conn, storage_ids):
    """The latest sampled bytes of each storage, by id (none before its first sample)."""
    if not storage_ids:
        return {}
    latest = (sa.select(usage_samples.c.storage_id, sa.func.max(usage_samples.c.sample_id).label("last"))
              .where(usage_samples.c.storage_id.in_(storage_ids)).group_by(usage_samples.c.storage_id)
              .subquery())
    rows = conn.execute(sa.select(usage_samples.c.storage_id, usage_samples.c.used_bytes).join(
        latest, usage_samples.c.sample_id == latest.c.last)).all()
    return {storage_id: used for storage_id, used in rows}


def usage_between(conn, storage_id, start, end):
    """The storage's samples ``(at, used_bytes, bytes_in, bytes_out)`` from ``start`` to before ``end``, by time."""
    return conn.execute(sa.select(usage_samples.c.at, usage_samples.c.used_bytes, usage_samples.c.bytes_in,
                                  usage_samples.c.bytes_out)
                        .where(usage_samples.c.storage_id == storage_id, usage_samples.c.at >= start,
                               usage_samples.c.at < end)
                        .order_by(usage_samples.c.at)).all()


def last_sample(conn, storage_id):
    """The storage's latest usage sample, None before its first."""
    return conn.execute(sa.select(usage_samples).where(usage_samples.c.storage_id == storage_id)
                        .order_by(usage_samples.c.sample_id.desc()).limit(1)).mappings().first()


def add_sample(conn, sample):
    """Record a usage sample (a dict of ``usage_samples`` columns)."""
    conn.execute(usage_samples.insert().values(**sample))


def _storage_id(event):
    return event.stream_id.removeprefix("storage-")


class StorageProjection(Projection):
    tables = (storages, buckets)

    def _set(self, conn, event, **values):
        conn.execute(storages.update().where(storages.c.storage_id == _storage_id(event)).values(**values))

    def when_storage_created(self, conn, event):
        data = event.data
        conn.execute(storages.insert().values(
            storage_id=data["storage_id"], user_id=data["user_id"], name=data["name"], limit_bytes=data["limit_bytes"],
            location=data["location"], s3uid=data["s3uid"], iam_user=data["iam_user"], status="active",
            writes_suspended=False, idempotency_key=data.get("idempotency_key"),
            created_at=event.recorded_at.isoformat()))

    def when_storage_credentials_issued(self, conn, event):
        self._set(conn, event, access_key=event.data["access_key"])

    def when_storage_deletion_requested(self, conn, event):
        self._set(conn, event, status="deleting")

    def when_storage_deletion_failed(self, conn, event):
        self._set(conn, event, status="active")

    def when_storage_deleted(self, conn, event):
        self._set(conn, event, status="deleted", access_key=None)
        conn.execute(buckets.delete().where(buckets.c.storage_id == _storage_id(event)))

    def when_storage_writes_suspended(self, conn, event):
        self._set(conn, event, writes_suspended=True)

    def when_storage_writes_resumed(self, conn, event):
        self._set(conn, event, writes_suspended=False)

    def _bucket(self, event):
        location = sa.select(storages.c.location).where(storages.c.storage_id == _storage_id(event)).scalar_subquery()
        return sa.and_(buckets.c.location == location, buckets.c.name == event.data["name"],
                       buckets.c.storage_id == _storage_id(event))

    def when_bucket_requested(self, conn, event):
        location = conn.execute(sa.select(storages.c.location).where(
            storages.c.storage_id == _storage_id(event))).scalar_one()
        conn.execute(buckets.insert().values(
            location=location, name=event.data["name"], storage_id=_storage_id(event), status="creating",
            operation_id=event.data["operation_id"], created_at=event.recorded_at.isoformat()))

    def when_bucket_created(self, conn, event):
        conn.execute(buckets.update().where(self._bucket(event)).values(status="active"))

    def when_bucket_creation_failed(self, conn, event):
        conn.execute(buckets.delete().where(self._bucket(event)))

    def when_bucket_deletion_requested(self, conn, event):
        conn.execute(buckets.update().where(self._bucket(event)).values(
            status="deleting", operation_id=event.data["operation_id"]))

    def when_bucket_deletion_failed(self, conn, event):
        conn.execute(buckets.update().where(self._bucket(event)).values(status="active"))

    def when_bucket_deleted(self, conn, event):
        conn.execute(buckets.delete().where(self._bucket(event)))


schema.add_projection(StorageProjection())
