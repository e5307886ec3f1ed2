"""Catalog and order routes (API.md "Catalog and orders", R-INST, R-STOCK)."""

SCHEMAS = {}


class OrderRoutes:
    pass
