"""The notify service: each customer's action log built from every service's operation events."""
