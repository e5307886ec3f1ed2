"""The command groups of hostctl, one module per area of the API."""
