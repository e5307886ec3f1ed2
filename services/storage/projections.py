"""Schema and read models of the storage service."""

from common.service import ServiceSchema

schema = ServiceSchema("storage")
