"""Wires the storage use cases to this container's store, operations, clock, metrics, the
storage clusters of the configured locations and the secrets key."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.metrics import Metrics
from common.sealing import secret_box
from common.service import EventStoreProvider, OperationsProvider, find_provider
from services.storage.adapters.factory import build_backends
from services.storage.usecases import StorageUseCases

DEFAULT_SAMPLE_SECONDS = 300


class StorageUseCasesProvider(DependencyProvider):
    def setup(self):
        # Bad settings (S3_ENDPOINTS, keys) stop the service at start, not at the first call.
        config = self.container.config
        self.box = secret_box(config)
        self._config = config

    def start(self):
        self.usecases = StorageUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            operations=find_provider(self.container, OperationsProvider).helper(),
            backends=build_backends(self._config,
                                    observe=find_provider(self.container, Metrics).metrics.observe_adapter_call),
            box=self.box,
            clock=find_provider(self.container, ClockProvider).clock,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
