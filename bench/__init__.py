"""Benchmarks of the panel's plumbing: RPC round trips against a raw AMQP floor
(``python -m bench.rpc``) and the event store's append and replay rates
(``python -m bench.eventstore``). See ``bench/README.md``.

Also here, for every benchmark: ``BenchError`` (the run cannot go on: printed, exit code 1)
and ``say`` (a line on stderr that cannot fail). Nothing else: each benchmark is started as
``python -m bench.<name>`` and monkey-patches eventlet first, so importing this package
must import nothing that opens sockets."""

import sys


class BenchError(RuntimeError):
    pass


def say(message):
    """A line on stderr that cannot fail (a closed pipe must not stop the clean-up)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
