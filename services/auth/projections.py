"""Schema and read models of the auth service."""

from common.service import ServiceSchema

schema = ServiceSchema("auth")
