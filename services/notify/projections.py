"""Schema and read models of the notify service."""

from common.service import ServiceSchema

schema = ServiceSchema("notify")
