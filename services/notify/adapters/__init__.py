"""The notify service's outside world: the customers' webhook receivers."""
