"""What every adapter to the outside world shares: a time limit for a whole call, and the
``observe(adapter, provider, outcome, seconds)`` bookkeeping behind the adapter metrics
(``PanelMetrics.observe_adapter_call``). Each adapter package raises its own error types."""

import contextlib
import logging
import sys
import time

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


@contextlib.contextmanager
def time_limit(seconds, timed_out):
    """Bound a whole call to ``seconds``; past it, raise ``timed_out()``. Clients' own
    time-outs bound each socket operation only (a peer trickling bytes could hold a worker
    far longer); under eventlet, where the services run, an ``eventlet.Timeout`` bounds the
    total as well. Outside eventlet only the clients' time-outs apply."""
    eventlet = sys.modules.get("eventlet")
    if eventlet is None or not eventlet.patcher.is_monkey_patched("socket"):
        yield
        return
    timer = eventlet.Timeout(seconds, False)
    fired = True
    with timer:
        yield
        fired = False
    if fired:
        raise timed_out()


def observed(observe, adapter, provider, attempt, failures):
    """Run ``attempt()`` and report its outcome (ok, failed, or timeout when the raised
    ``failures`` error says ``timed_out``) and duration to ``observe``, if any. A broken
    hook is logged, never allowed to break the call itself."""
    started = time.perf_counter()
    outcome = FAILED
    try:
        result = attempt()
        outcome = OK
        return result
    except failures as error:
        outcome = TIMEOUT if getattr(error, "timed_out", False) else FAILED
        raise
    finally:
        if observe is not None:
            try:
                observe(adapter, provider, outcome, time.perf_counter() - started)
            except Exception:  # the hook must never break the call
                log.exception("observe hook failed", extra={"adapter": adapter, "provider": provider})
