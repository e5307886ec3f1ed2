"""The auth service: customer accounts, password hashes, two-factor challenges, password recovery and login throttling."""
