"""Support ticket routes (API.md "Support", R-SUP)."""

SCHEMAS = {}


class SupportRoutes:
    pass
