"""Entrypoints of the notify service (run: ``nameko run --config deploy/config/notify.yaml
services.notify.service``)."""

from common.service import PanelService
from services.notify.projections import schema


class NotifyService(PanelService):
    name = "notify"
    schema = schema
