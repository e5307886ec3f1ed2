"""Wires the inventory use cases to this container's store, operations, clock and metrics."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.metrics import Metrics
from common.service import EventStoreProvider, OperationsProvider, find_provider
from services.inventory.usecases import InventoryUseCases


class InventoryUseCasesProvider(DependencyProvider):
    def start(self):
        self.usecases = InventoryUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            operations=find_provider(self.container, OperationsProvider).helper(),
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
            observe=find_provider(self.container, Metrics).metrics.observe_adapter_call,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
