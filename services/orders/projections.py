"""Schema and read models of the orders service."""

from common.service import ServiceSchema

schema = ServiceSchema("orders")
