"""Wires the orders use cases to this container's store, operations, clock, config and catalog."""

from pathlib import Path

from nameko.extensions import DependencyProvider

from common.clock import ClockProvider
from common.config import REPO_ROOT
from common.service import EventStoreProvider, OperationsProvider, find_provider
from services.orders.catalog import load_catalog
from services.orders.usecases import OrdersUseCases

DEFAULT_CATALOG = "deploy/catalog/offers.yaml"


def catalog_path(config):
    path = Path(config.get("CATALOG_FILE") or DEFAULT_CATALOG)
    return path if path.is_absolute() else REPO_ROOT / path


class OrdersUseCasesProvider(DependencyProvider):
    def setup(self):
        # Read at start: a broken data file stops the service with a message naming the offer.
        self.offers = load_catalog(catalog_path(self.container.config))

    def start(self):
        self.usecases = OrdersUseCases(
            store=find_provider(self.container, EventStoreProvider).store,
            operations=find_provider(self.container, OperationsProvider).helper(),
            clock=find_provider(self.container, ClockProvider).clock,
            config=self.container.config,
            offers=self.offers,
        )

    def get_dependency(self, worker_ctx):
        return self.usecases
