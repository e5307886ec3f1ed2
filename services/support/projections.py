"""Schema and read models of the support service."""

from common.service import ServiceSchema

schema = ServiceSchema("support")
