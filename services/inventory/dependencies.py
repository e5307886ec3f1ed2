"""Wires the inventory use cases to this container's store, operations, clock and metrics."""

import logging

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.config import MissingCredentials
from common.metrics import Metrics
from common.service import EventStoreProvider, OperationsProvider, find_provider
from services.inventory.adapters.factory import bmc_credentials
from services.inventory.usecases import InventoryUseCases

log = logging.getLogger(__name__)


class InventoryUseCasesProvider(DependencyProvider):
    def start(self):
        try:
            bmc_credentials(self.container.config)
        except MissingCredentials as missing:
            # Not fatal: lists, tags and billing facts work without BMCs; actions fail.
            log.error("%s; every BMC call fails until they are", missing)
        self.usecases = InventoryUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            operations=find_provider(self.container, OperationsProvider).helper(),
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
            observe=find_provider(self.container, Metrics).metrics.observe_adapter_call,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
