"""Entrypoints of the storage service (run: ``nameko run --config deploy/config/storage.yaml
services.storage.service``)."""

from common.service import PanelService
from services.storage.projections import schema


class StorageService(PanelService):
    name = "storage"
    schema = schema
