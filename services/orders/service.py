"""Entrypoints of the orders service (run: ``nameko run --config deploy/config/orders.yaml
services.orders.service``)."""

from common.service import PanelService
from services.orders.projections import schema


class OrdersService(PanelService):
    name = "orders"
    schema = schema
