"""The storage service's use cases: storages, buckets, credentials, usage and its limit.

Every customer query and command takes the customer (``user_id``) from the caller; a
storage that is not theirs is ``NotFound``, exactly like one that does not exist.

Creating a storage creates its IAM user and access key on the location's cluster at once (two
quick administrator calls; the customer gets working credentials in the answer). Bucket
creation, bucket deletion and storage deletion are operations (``storage.bucket_create``,
``storage.bucket_delete``, ``storage.delete``): accepted at once, carried out by
``carry_out`` from this service's own published ``operation_requested``. Backend calls never
happen inside a database transaction.

Usage: ``sample_usage`` measures every active storage (bytes stored: the sum over its
buckets; traffic: the meter's counters of its keys, stored as the difference since the last
sample), writes a row of ``usage_samples``, and lets the aggregate weigh the bytes against
the limit — alerts at 80/90/100 % and, at 100 %, writes denied by an IAM policy until usage
falls below the limit again.
"""

import logging
import secrets

from sqlalchemy.exc import IntegrityError

from common import context
from common.errors import (
    ConcurrencyConflict,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_with_code,
)
from common.eventstore import ANY_VERSION, NewEvent, retrying
from common.operations import Operation, OperationFailed, stream_of
from common.paging import page_problems
from services.storage import domain
from services.storage.adapters import BackendError, BucketNotEmpty, BucketTaken
from services.storage.projections import (
    active_storage_ids,
    add_sample,
    bucket_count,
    bucket_page,
    last_sample,
    storage_by_key,
    storage_of,
    storage_page,
    usage_between,
    used_bytes,
)

log = logging.getLogger(__name__)

LOCATION_NAMES = {"NL": "Netherlands", "US": "United States", "DE": "Germany", "SG": "Singapore"}


def new_s3uid():
    """``s3-`` and 10 lowercase hex digits: unique id of a storage (R-S3-2)."""
    return f"s3-{secrets.token_hex(5)}"


def check_page(page, per_page):
    problems = page_problems(page, per_page)
    if problems:
        raise ValidationFailed("The list request is invalid.", fields=problems)


def storage_view(row, used_bytes):
    """A storage as lists show it (API.md "S3 storage")."""
    return {"id": row["storage_id"], "name": row["name"], "limit_gb": domain.gb_of(row["limit_bytes"]),
            "limit_bytes": row["limit_bytes"], "location": row["location"],
            "s3uid": row["s3uid"], "used_bytes": used_bytes, "status": row["status"],
            "writes_suspended": row["writes_suspended"], "created_at": row["created_at"]}


def bucket_view(row):
    return {"name": row["name"], "status": row["status"], "created_at": row["created_at"],
            "operation_id": row["operation_id"]}


def _params(tx, view):
    """The parameters an operation was requested with (the outcome's view does not carry them)."""
    return Operation.replay(tx.load_stream(stream_of(view["operation_id"]))).params


class StorageUseCases:
    def __init__(self, store, operations, backends, box, clock):
        self.store = store
        self.operations = operations
        self.backends = backends
        self.box = box
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------

    def _load(self, storage_id, user_id=None):
        storage = self.store.get(domain.Storage, storage_id)
        if not storage.live or (user_id is not None and storage.user_id != user_id):
            raise NotFound("No such storage.")
        return storage

    def _row(self, conn, user_id, storage_id):
        row = storage_of(conn, user_id, storage_id)
        if row is None:
            raise NotFound("No such storage.")
        return row

    def locations(self):
        return [{"code": code, "name": LOCATION_NAMES.get(code, code), "endpoint": backend.public_endpoint}
                for code, backend in self.backends.items()]

    def list_storages(self, user_id, page=1, per_page=50):
        check_page(page, per_page)
        with self.store.engine.connect() as conn:
            rows, total = storage_page(conn, user_id, page, per_page)
            used = used_bytes(conn, [r["storage_id"] for r in rows])
        return {"items": [storage_view(r, used.get(r["storage_id"], 0)) for r in rows], "total": total,
                "page": page, "per_page": per_page}

    def get_storage(self, user_id, storage_id):
        with self.store.engine.connect() as conn:
            row = self._row(conn, user_id, storage_id)
            used = used_bytes(conn, [storage_id]).get(storage_id, 0)
            count = bucket_count(conn, storage_id)
        backend = self.backends.get(row["location"])
        return dict(storage_view(row, used), bucket_count=count,
                    endpoint=backend.public_endpoint if backend else None,
                    recent_operations=self.operations.recent(storage_id, user_id))

    def list_buckets(self, user_id, storage_id, page=1, per_page=50):
        check_page(page, per_page)
        with self.store.engine.connect() as conn:
            self._row(conn, user_id, storage_id)
            rows, total = bucket_page(conn, storage_id, page, per_page)
        return {"items": [bucket_view(r) for r in rows], "total": total, "page": page, "per_page": per_page}

    def credentials(self, user_id, storage_id):
        """What an S3 client needs (R-S3-5). The secret is unsealed for this answer only."""
        storage = self._load(storage_id, user_id)
        backend = self._backend(storage)
        return {"access_key": storage.access_key, "secret_key": self.box.unseal(storage.secret_sealed),
                "endpoints": [backend.public_endpoint], "region": backend.region, "location": storage.location,
                "path_style": True, "writes_suspended": storage.writes_suspended}

    def _backend(self, storage):
        try:
            return self.backends[storage.location]
        except KeyError:
            raise ServiceUnavailable(f"The {storage.location} storage cluster is not configured.")

    # -- storages --------------------------------------------------------------------------

    def create_storage(self, user_id, name, limit_gb, location, idempotency_key=None):
        name, limit_bytes = domain.check_new_storage(name, limit_gb, location, list(self.backends))
        if idempotency_key:
            with self.store.engine.connect() as conn:
                earlier = storage_by_key(conn, user_id, idempotency_key)
            if earlier is not None:
                if (earlier["name"], earlier["limit_bytes"], earlier["location"]) != (name, limit_bytes, location):
                    raise error_with_code(Conflict, "idempotency_key_reused",
                                          "This Idempotency-Key was used for a different storage.")
                return self.get_storage(user_id, earlier["storage_id"])
        storage_id, s3uid = context.new_id(), new_s3uid()
        iam_user = domain.iam_user_of(s3uid)
        backend = self.backends[location]
        try:
            backend.create_user(iam_user)
            access_key, secret = backend.create_access_key(iam_user)
        except BackendError as error:
            self._forget_user(backend, iam_user)
            raise ServiceUnavailable(f"{error} Try again in a moment.")
        events = domain.Storage.create(
            storage_id, user_id=user_id, name=name, limit_gb=limit_gb, location=location,
            locations=list(self.backends), s3uid=s3uid, access_key=access_key,
            secret_sealed=self.box.seal(secret), idempotency_key=idempotency_key)
        try:
            self.store.create(domain.Storage, storage_id, events)
        except IntegrityError:
            self._forget_user(backend, iam_user)
            return self.create_storage(user_id, name, limit_gb, location, idempotency_key)
        except Exception:
            self._forget_user(backend, iam_user)
            raise
        return self.get_storage(user_id, storage_id)

    @staticmethod
    def _forget_user(backend, iam_user):
        try:
            backend.delete_user(iam_user)
        except BackendError:
            log.warning("could not remove an IAM user of a storage that was not created",
                        extra={"iam_user": iam_user, "location": backend.location})

    def request_deletion(self, user_id, storage_id):
        storage = self._load(storage_id, user_id)
        operation_id, earlier = self.operations.id_for("storage.delete", storage_id, user_id)
        if earlier is not None:  # the same command again (Idempotency-Key): the operation it started
            return earlier
        events = storage.request_deletion(operation_id)
        with self.store.transaction() as tx:
            tx.save(storage, events)
            return self.operations.request(
                tx, kind="storage.delete", target=storage_id, title=f"Delete storage {storage.name}",
                params={"storage_id": storage_id}, user_id=user_id, operation_id=operation_id)

    def rotate_credentials(self, user_id, storage_id):
        """A new access key replaces the current one: the new one works at once, the old one
        (and any other left over) is deleted on the cluster and stops working."""
        storage = self._load(storage_id, user_id)
        storage.rotate_credentials("-", "-")  # refuses a storage that is not active, before any backend call
        backend = self._backend(storage)
        try:
            backend.delete_other_keys(storage.iam_user, keep=storage.access_key)
            access_key, secret = backend.create_access_key(storage.iam_user)
        except BackendError as error:
            raise ServiceUnavailable(f"{error} Try again in a moment.")
        try:
            retrying(lambda: self._record_key(storage_id, access_key, secret))
        except Exception:
            self._revoke(backend, storage.iam_user, access_key)
            raise
        try:
            backend.delete_other_keys(storage.iam_user, keep=access_key)
        except BackendError as error:
            raise ServiceUnavailable(f"The new key is ready, but the old one could not be revoked yet ({error}); "
                                     "rotate again in a moment.")
        return self.credentials(user_id, storage_id)

    def _record_key(self, storage_id, access_key, secret):
        storage = self._load(storage_id)
        with self.store.transaction() as tx:
            tx.save(storage, storage.rotate_credentials(access_key, self.box.seal(secret)))
            # Published for the action log, apart from the sealed secret (stream of its own).
            tx.append(f"storage-activity-{storage_id}", ANY_VERSION, [NewEvent("storage_keys_rotated", {
                "storage_id": storage_id, "user_id": storage.user_id, "name": storage.name,
                "at": self.clock.now().isoformat()})])

    @staticmethod
    def _revoke(backend, iam_user, access_key):
        try:
            backend.delete_access_key(iam_user, access_key)
        except BackendError:
            log.warning("could not revoke an unrecorded access key", extra={"iam_user": iam_user})

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, user_id, storage_id, name, idempotency_key=None):
        """Accept a bucket as an operation; the same ``idempotency_key`` again answers the
        first request (its operation and the bucket as it is now)."""
        storage = self._load(storage_id, user_id)
        earlier = storage.earlier_bucket_request(name, idempotency_key)
        if earlier is not None:
            return {"operation": self.operations.get(earlier), "bucket": {
                "name": name, "status": storage.buckets.get(name, "deleted"), "operation_id": earlier}}
        operation_id = self.operations.new_id()
        events = storage.request_bucket(name, operation_id, idempotency_key)
        try:
            with self.store.transaction() as tx:
                tx.save(storage, events)
                operation = self.operations.request(
                    tx, kind="storage.bucket_create", target=storage_id,
                    title=f"Create bucket {name} in {storage.name}",
                    params={"storage_id": storage_id, "name": name}, user_id=user_id, operation_id=operation_id)
        except IntegrityError:
            raise error_with_code(Conflict, "bucket_name_taken",
                                  f"The bucket name {name} is already in use in {storage.location}; choose another.")
        return {"operation": operation, "bucket": {"name": name, "status": domain.CREATING,
                                                   "operation_id": operation_id}}

    def delete_bucket(self, user_id, storage_id, name, force=False):
        storage = self._load(storage_id, user_id)
        operation_id, earlier = self.operations.id_for("storage.bucket_delete", f"{storage_id}/{name}", user_id)
        if earlier is not None:  # the same command again (Idempotency-Key): the operation it started
            return earlier
        if storage.buckets.get(name) not in (domain.ACTIVE, domain.DELETING):
            raise NotFound("No such bucket.")
        try:
            empty = force or self._backend(storage).bucket_is_empty(name)
        except BackendError as error:
            raise ServiceUnavailable(f"{error} Try again in a moment.")
        events = storage.request_bucket_deletion(name, operation_id, force, empty)
        with self.store.transaction() as tx:
            tx.save(storage, events)
            return self.operations.request(
                tx, kind="storage.bucket_delete", target=storage_id,
                title=f"Delete bucket {name} from {storage.name}" + (" with its objects" if force else ""),
                params={"storage_id": storage_id, "name": name, "force": bool(force)}, user_id=user_id,
                operation_id=operation_id)

    # -- operations ------------------------------------------------------------------------

    def carry_out(self, operation_id):
        """Do an accepted storage operation against the cluster; its outcome is recorded on
        the storage in the same transaction as the operation's result."""
        view = self.operations.get(operation_id)
        work, finish = {
            "storage.bucket_create": (self._create_bucket_work, self._finish_bucket),
            "storage.bucket_delete": (self._delete_bucket_work, self._finish_bucket_deletion),
            "storage.delete": (self._delete_storage_work, self._finish_deletion),
        }[view["kind"]]
        return self.operations.run(operation_id, work, also=finish)

    def _create_bucket_work(self, view):
        storage = self._load(view["params"]["storage_id"])
        name = view["params"]["name"]
        backend = self._backend(storage)
        try:
            backend.create_bucket(name)
            self._allow_requested_buckets(backend, storage.storage_id)
        except BucketTaken:
            raise OperationFailed(f"The name {name} is already in use on the {storage.location} cluster.")
        except BackendError as error:
            raise OperationFailed(str(error))
        return f"Bucket {name} is ready.", {"name": name}

    def _allow_requested_buckets(self, backend, storage_id, also=()):
        """Rewrite the storage key's policy from the storage as it is now (not as it was when
        this operation began): bucket operations of one storage may run at the same time."""
        storage = self._load(storage_id)
        backend.allow_buckets(storage.iam_user, set(storage.policy_buckets()) | set(also))

    def _regrant_after_failed_deletion(self, backend, storage_id, name):
        """A deletion that failed leaves the bucket in place: give the key back the access
        that another operation's policy rewrite may have taken while it was being deleted.
        Best effort (the failure being reported is the deletion's)."""
        try:
            self._allow_requested_buckets(backend, storage_id, also={name})
        except BackendError as error:
            log.warning("could not restore a bucket's access after its deletion failed (%s)", error,
                        extra={"storage_id": storage_id})

    def _finish_bucket(self, tx, view):
        storage = tx.get(domain.Storage, view["target"])
        events = storage.finish_bucket(_params(tx, view)["name"], view["operation_id"],
                                       view["status"] == "succeeded", view.get("detail"))
        tx.save(storage, events)

    def _delete_bucket_work(self, view):
        storage = self._load(view["params"]["storage_id"])
        name, force = view["params"]["name"], view["params"]["force"]
        backend = self._backend(storage)
        try:
            backend.delete_bucket(name, force=force)
            self._allow_requested_buckets(backend, storage.storage_id)
        except BucketNotEmpty:
            self._regrant_after_failed_deletion(backend, storage.storage_id, name)
            raise OperationFailed(f"Bucket {name} is not empty; delete it with force to remove its objects too.")
        except BackendError as error:
            self._regrant_after_failed_deletion(backend, storage.storage_id, name)
            raise OperationFailed(str(error))
        return f"Bucket {name} is deleted.", {"name": name}

    def _finish_bucket_deletion(self, tx, view):
        storage = tx.get(domain.Storage, view["target"])
        tx.save(storage, storage.finish_bucket_deletion(
            _params(tx, view)["name"], view["operation_id"], view["status"] == "succeeded"))

    def _delete_storage_work(self, view):
        storage = self._load(view["params"]["storage_id"])
        backend = self._backend(storage)
        remaining = set(storage.active_buckets())
        try:
            for name in sorted(remaining):
                backend.delete_bucket(name, force=True)
                remaining.discard(name)
                backend.allow_buckets(storage.iam_user, remaining)
                retrying(lambda name=name: self._bucket_removed(storage.storage_id, name, view["operation_id"]))
            backend.delete_user(storage.iam_user)
        except BackendError as error:
            raise OperationFailed(str(error))
        return f"Storage {storage.name} and its buckets are deleted.", {}

    def _bucket_removed(self, storage_id, name, operation_id):
        storage = self._load(storage_id)
        self.store.save(storage, storage.bucket_removed(name, operation_id))

    def _finish_deletion(self, tx, view):
        storage = tx.get(domain.Storage, view["target"])
        tx.save(storage, storage.finish_deletion(view["operation_id"], view["status"] == "succeeded"))

    # -- usage -----------------------------------------------------------------------------

    def usage(self, user_id, storage_id, metric, start=None, end=None, step=None):
        metric, start, end, step = domain.usage_window(metric, start, end, step, self.clock.now().timestamp())
        with self.store.engine.connect() as conn:
            self._row(conn, user_id, storage_id)
            rows = usage_between(conn, storage_id, start, end)
        series = domain.aggregate_usage(metric, [tuple(r) for r in rows], start, step)
        return {"metric": metric, "unit": domain.METRICS[metric], "from": int(start), "to": int(end), "step": step,
                **series}

    def sample_usage(self, storage_id=None):
        """Measure every active storage (or one); returns how many were sampled. A storage
        whose cluster does not answer is skipped this round (and logged)."""
        with self.store.engine.connect() as conn:
            ids = active_storage_ids(conn, storage_id)
        sampled = 0
        for one in ids:
            try:
                if self._sample(one):
                    sampled += 1
            except BackendError as error:
                log.warning("usage sample skipped: the cluster did not answer",
                            extra={"storage_id": one, "reason": error.reason})
            except ConcurrencyConflict:
                log.info("usage sample skipped: the storage changed meanwhile", extra={"storage_id": one})
        return sampled

    def _sample(self, storage_id):
        storage = self._load(storage_id)
        if storage.status != domain.ACTIVE:
            return False
        backend = self._backend(storage)
        used = sum(backend.bucket_bytes(name) for name in storage.active_buckets())
        traffic = backend.traffic(storage.retired_keys + [storage.access_key])
        now = self.clock.now()
        events = storage.observe_usage(used, now.isoformat())
        kinds = {event.type for event in events}
        if "storage_writes_suspended" in kinds:
            backend.suspend_writes(storage.iam_user)
        elif "storage_writes_resumed" in kinds:
            backend.resume_writes(storage.iam_user)
        with self.store.transaction() as tx:
            tx.lock_log()  # one sampler at a time computes the traffic difference
            previous = last_sample(tx.conn, storage_id)
            row = {"storage_id": storage_id, "at": now.timestamp(), "used_bytes": used, "bytes_in": None,
                   "bytes_out": None}
            if traffic is not None:
                row.update(meter_epoch=traffic["epoch"], meter_in=traffic["bytes_in"], meter_out=traffic["bytes_out"])
                if previous is None or previous["meter_epoch"] != traffic["epoch"]:
                    row.update(bytes_in=traffic["bytes_in"], bytes_out=traffic["bytes_out"])  # counters started at 0
                else:
                    row.update(bytes_in=max(traffic["bytes_in"] - previous["meter_in"], 0),
                               bytes_out=max(traffic["bytes_out"] - previous["meter_out"], 0))
            elif previous is not None:  # unmeasured now: keep the last reading for the next difference
                row.update(meter_epoch=previous["meter_epoch"], meter_in=previous["meter_in"],
                           meter_out=previous["meter_out"])
            add_sample(tx.conn, row)
            tx.save(storage, events)
        return True

