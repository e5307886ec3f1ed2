"""Benchmarks of the panel's plumbing: RPC round trips against a raw AMQP floor
(``python -m bench.rpc``) and the event store's append and replay rates
(``python -m bench.eventstore``). See ``bench/README.md``."""
