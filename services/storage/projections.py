"""Schema and read models of the storage service.

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
