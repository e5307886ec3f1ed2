"""Wires the billing use cases to this container's store, operations, clock and payment providers."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.metrics import Metrics
from common.service import EventStoreProvider, OperationsProvider, find_provider
from services.billing.adapters.factory import build_payment_providers
from services.billing.usecases import BillingUseCases


class BillingUseCasesProvider(DependencyProvider):
    def start(self):
        observe = find_provider(self.container, Metrics).metrics.observe_adapter_call
        self.usecases = BillingUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            operations=find_provider(self.container, OperationsProvider).helper(),
            providers=build_payment_providers(self.container.config, observe=observe),
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
