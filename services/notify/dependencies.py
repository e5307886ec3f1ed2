"""Wires the notify use cases to this container's store and clock."""

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.service import EventStoreProvider, find_provider
from services.notify.usecases import NotifyUseCases


class NotifyUseCasesProvider(DependencyProvider):
    def start(self):
        self.usecases = NotifyUseCases(find_provider(self.container, EventStoreProvider).store,
                                       find_provider(self.container, ClockProvider).clock)

    def get_dependency(self, worker_ctx):
        return self.usecases
