"""The service's clock: UTC now, which tests and the demo can move forward.

Business rules that depend on time (code expiry, throttling, invoices) read ``clock.now()``
instead of the system clock. With ``CLOCK_ADJUSTABLE: true`` in the config (tests, the
demo), ``advance(seconds)`` moves this process's clock forward; otherwise it is refused.
The offset lives in the process: each replica has its own.
"""

from datetime import timedelta

from nameko.extensions import DependencyProvider

from common.errors import Forbidden
from common.eventstore import utcnow


class Clock:
    def __init__(self, adjustable=False):
        self.adjustable = adjustable
        self.offset = timedelta(0)

    def now(self):
        return utcnow() + self.offset

    def advance(self, seconds):
        if not self.adjustable:
            raise Forbidden("This clock cannot be moved (CLOCK_ADJUSTABLE is off).")
        if seconds < 0:
            raise Forbidden("Time only moves forward.")
        self.offset += timedelta(seconds=seconds)
        return self.now()


class ClockProvider(DependencyProvider):
    def setup(self):
        self.clock = Clock(adjustable=bool(self.container.config.get("CLOCK_ADJUSTABLE", False)))

    def get_dependency(self, worker_ctx):
        return self.clock
