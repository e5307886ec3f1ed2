"""Entrypoints of the support service (run: ``nameko run --config deploy/config/support.yaml
services.support.service``)."""

from common.service import PanelService
from services.support.projections import schema


class SupportService(PanelService):
    name = "support"
    schema = schema
