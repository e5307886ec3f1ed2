"""Builds the inventory use cases from this service's parts (``common.service.UseCases``)."""

import logging

from common.config import MissingCredentials
from services.inventory.adapters.factory import bmc_credentials
from services.inventory.usecases import InventoryUseCases

log = logging.getLogger(__name__)


def build(parts):
    try:
        bmc_credentials(parts.config)
    except MissingCredentials as missing:
        # Not fatal: lists, tags and billing facts work without BMCs; actions fail.
        log.error("%s; every BMC call fails until they are", missing)
    return InventoryUseCases(store=parts.store, operations=parts.operations, clock=parts.clock,
                             config=parts.config, observe=parts.observe)
