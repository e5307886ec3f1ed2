"""Wires the support use cases to this container's store, clock, metrics and blob store."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.metrics import Metrics
from common.service import EventStoreProvider, find_provider
from services.support.adapters.factory import build_blob_store
from services.support.usecases import SupportUseCases


class SupportUseCasesProvider(DependencyProvider):
    def start(self):
        observe = find_provider(self.container, Metrics).metrics.observe_adapter_call
        self.usecases = SupportUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            blobs=build_blob_store(self.container.config, observe=observe),
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
