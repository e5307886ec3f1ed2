"""Entrypoints of the billing service (run: ``nameko run --config deploy/config/billing.yaml
services.billing.service``)."""

from common.service import PanelService
from services.billing.projections import schema


class BillingService(PanelService):
    name = "billing"
    schema = schema
