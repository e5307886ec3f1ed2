"""Entrypoints of the inventory service (run: ``nameko run --config deploy/config/inventory.yaml
services.inventory.service``)."""

from common.service import PanelService
from services.inventory.projections import schema


class InventoryService(PanelService):
    name = "inventory"
    schema = schema
