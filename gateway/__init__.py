"""The gateway: the only HTTP entry of the panel (sessions, validation, RPC, error mapping)."""
