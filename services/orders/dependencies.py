"""Builds the orders use cases from this service's parts and the offer catalog, read at
setup: a broken data file stops the service with a message naming the offer."""

from pathlib import Path

from common.config import REPO_ROOT
from services.orders.catalog import load_catalog
from services.orders.usecases import OrdersUseCases

DEFAULT_CATALOG = "deploy/catalog/offers.yaml"


def catalog_path(config):
    path = Path(config.get("CATALOG_FILE") or DEFAULT_CATALOG)
    return path if path.is_absolute() else REPO_ROOT / path


def read_catalog(config):
    return load_catalog(catalog_path(config))


def build(parts):
    return OrdersUseCases(store=parts.store, operations=parts.operations, clock=parts.clock,
                          config=parts.config, offers=parts.prepared)
