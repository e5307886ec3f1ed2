"""Entrypoints of the auth service (run: ``nameko run --config deploy/config/auth.yaml
services.auth.service``)."""

from common.service import PanelService
from services.auth.projections import schema


class AuthService(PanelService):
    name = "auth"
    schema = schema
