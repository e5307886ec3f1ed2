"""Schema and read models of the billing service."""

from common.service import ServiceSchema

schema = ServiceSchema("billing")
