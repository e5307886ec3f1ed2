"""What the adapters share: a time limit per call, one HTTP POST that turns every failure
into ``DeliveryFailed``, and the ``observe`` bookkeeping of each attempt."""

import contextlib
import logging
import sys
import time

import requests

from services.auth.adapters import DeliveryFailed

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"


@contextlib.contextmanager
def time_limit(provider, seconds):
    """Bound a whole call to ``seconds``. The clients' own time-outs bound each socket
    operation only (a provider trickling bytes could hold us far longer); under eventlet,
    where the auth service runs, an ``eventlet.Timeout`` bounds the total as well."""
    eventlet = sys.modules.get("eventlet")
    if eventlet is None or not eventlet.patcher.is_monkey_patched("socket"):
        yield
        return
    timer = eventlet.Timeout(seconds, False)
    timer_fired = True
    with timer:
        yield
        timer_fired = False
    if timer_fired:
        raise DeliveryFailed(provider, f"no answer within {seconds:g} s", timed_out=True)


def post(provider, url, timeout, **kwargs):
    """POST to a provider's HTTP API; the answer's JSON object, or ``DeliveryFailed``."""
    try:
        with time_limit(provider, timeout):
            response = requests.post(url, timeout=(timeout, timeout), **kwargs)
    except requests.Timeout:
        raise DeliveryFailed(provider, f"no answer within {timeout:g} s", timed_out=True) from None
    except requests.RequestException as error:
        # Only the class name: the message of a requests error repeats the URL.
        raise DeliveryFailed(provider, f"could not reach the provider ({type(error).__name__})") from None
    status = response.status_code
    if status in (401, 403):
        raise DeliveryFailed(provider, f"HTTP {status}: credentials refused")
    if status >= 400:
        raise DeliveryFailed(provider, f"HTTP {status}")
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryFailed(provider, f"HTTP {status} with an answer that is not JSON") from None
    if not isinstance(answer, dict):
        raise DeliveryFailed(provider, f"HTTP {status} with an unexpected answer")
    return answer


def field(provider, answer, name):
    """A required member of a provider's answer (the message or call id)."""
    value = answer.get(name)
    if not value:
        raise DeliveryFailed(provider, f"the answer has no {name!r}")
    return str(value)


def observed(observe, adapter, provider, attempt):
    """Run ``attempt()`` and report its outcome and duration to ``observe`` (if any).

    A broken hook is logged, never allowed to break the delivery itself."""
    started = time.perf_counter()
    outcome = FAILED
    try:
        result = attempt()
        outcome = OK
        return result
    except DeliveryFailed as error:
        outcome = TIMEOUT if error.timed_out else FAILED
        raise
    finally:
        if observe is not None:
            try:
                observe(adapter, provider, outcome, time.perf_counter() - started)
            except Exception:
                log.exception("observe hook failed", extra={"adapter": adapter, "provider": provider})
