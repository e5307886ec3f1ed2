"""Wires the auth use cases to this container's store, clock, metrics and adapters."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.metrics import Metrics
from common.service import EventStoreProvider, find_provider
from services.auth.adapters.factory import build_adapters
from services.auth.usecases import AuthUseCases


class AuthUseCasesProvider(DependencyProvider):
    def start(self):
        metrics = find_provider(self.container, Metrics).metrics
        adapters = build_adapters(self.container.config, observe=metrics.observe_adapter_call)
        self.usecases = AuthUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            adapters=adapters,
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
