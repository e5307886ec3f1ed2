"""S3 storage routes (API.md "S3 storage", R-S3)."""

SCHEMAS = {}


class StorageRoutes:
    pass
