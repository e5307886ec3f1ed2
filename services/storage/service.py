"""Entrypoints of the storage service (run: ``nameko run --config deploy/config/storage.yaml
services.storage.service:StorageService``).

Customer calls come through the gateway, which sets the customer in the call context; a
storage of another customer is ``not_found``. Bucket creation and deletion and storage
deletion are operations, carried out by ``carry_out`` from this service's own published
``operation_requested`` (a durable queue, acked after the work), so they survive a crash.
A timer samples usage every ``USAGE_SAMPLE_SECONDS``; ``sample_usage`` does it now.
"""

from common.messaging import operation_worker
from common.rpc import rpc
from common.service import PanelService, UseCases
from common.timers import configured_timer
from services.storage.dependencies import DEFAULT_SAMPLE_SECONDS, build, read_secrets_key
from services.storage.projections import schema


class StorageService(PanelService):
    name = "storage"
    schema = schema

    storage = UseCases(build, prepare=read_secrets_key)

    @rpc
    def locations(self):
        """The locations storages can be created in, with their S3 endpoints."""
        return self.storage.locations()

    @rpc
    def list_storages(self, page=1, per_page=50):
        return self.storage.list_storages(self._customer(), page, per_page)

    @rpc
    def get_storage(self, storage_id):
        return self.storage.get_storage(self._customer(), storage_id)

    @rpc
    def create_storage(self, name, limit_gb, location, idempotency_key=None):
        return self.storage.create_storage(self._customer(), name, limit_gb, location, idempotency_key)

    @rpc
    def delete_storage(self, storage_id):
        """Accepted as the operation ``storage.delete``: buckets, objects, keys and IAM user go."""
        return self.storage.request_deletion(self._customer(), storage_id)

    @rpc
    def list_buckets(self, storage_id, page=1, per_page=50):
        return self.storage.list_buckets(self._customer(), storage_id, page, per_page)

    @rpc
    def create_bucket(self, storage_id, name, idempotency_key=None):
        return self.storage.create_bucket(self._customer(), storage_id, name, idempotency_key)

    @rpc
    def delete_bucket(self, storage_id, name, force=False):
        return self.storage.delete_bucket(self._customer(), storage_id, name, force)

    @rpc
    def get_credentials(self, storage_id):
        return self.storage.credentials(self._customer(), storage_id)

    @rpc
    def rotate_credentials(self, storage_id):
        return self.storage.rotate_credentials(self._customer(), storage_id)

    @rpc
    def get_usage(self, storage_id, metric, start=None, end=None, step=None):
        return self.storage.usage(self._customer(), storage_id, metric, start, end, step)

    @rpc
    def sample_usage(self, storage_id=None):
        """Measure usage now (operators and tests; the timer does it every interval)."""
        return self.storage.sample_usage(storage_id)

    @configured_timer("USAGE_SAMPLE_SECONDS", DEFAULT_SAMPLE_SECONDS)
    def usage_sampler(self):
        self.storage.sample_usage()

    @operation_worker("storage", "storage.")
    def carry_out(self, operation):
        self.storage.carry_out(operation["operation_id"])
