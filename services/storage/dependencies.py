"""Builds the storage use cases from this service's parts, the storage clusters of the
configured locations and the secrets key (checked at setup: bad settings stop the service
at start, not at the first call)."""

from common.sealing import secret_box
from services.storage.adapters.factory import build_backends
from services.storage.usecases import StorageUseCases

DEFAULT_SAMPLE_SECONDS = 300


def read_secrets_key(config):
    return secret_box(config)


def build(parts):
    return StorageUseCases(store=parts.store, operations=parts.operations,
                           backends=build_backends(parts.config, observe=parts.observe),
                           box=parts.prepared, clock=parts.clock)
