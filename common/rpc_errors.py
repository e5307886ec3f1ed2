"""Registers the panel's error types with nameko, so that an error raised by a service
reaches its caller as the same type (``common.errors`` marks them and imports no nameko).
Imported by every module that sends or serves RPC (``common.rpc_client``,
``common.messaging``) and by every program that uses nameko's standalone proxies (the
staff tool, the demo seed, the probe, the benchmarks, the tests' conftest)."""

from nameko.exceptions import deserialize_to_instance

from common.errors import REMOTE_ERRORS

for error_type in REMOTE_ERRORS:
    deserialize_to_instance(error_type)
