"""Schema and read models of the inventory service."""

from common.service import ServiceSchema

schema = ServiceSchema("inventory")
