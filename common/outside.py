"""What every adapter to the outside world shares: a time limit for a whole call, one JSON
HTTP call that turns every failure into the adapter's own error, and the
``observe(adapter, provider, outcome, seconds)`` bookkeeping behind the adapter metrics
(``PanelMetrics.observe_adapter_call``). Each adapter package raises its own error types:
it hands down ``fail(message, timed_out=False)``, which builds one."""

import contextlib
import json
import logging
import sys
import time

import requests

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


def http_json(method, url, timeout, fail, tolerate=(), hint=lambda answer: "", **kwargs):
    """One HTTP request to a provider's JSON API: ``(status, answer)`` where ``answer`` is
    the JSON object it answered. A status in ``tolerate`` is returned as is (with ``{}`` when
    its body is not a JSON object); any other failure raises ``fail(message)``: no answer in
    ``timeout`` seconds (``timed_out=True``), no connection, 401/403 (credentials refused),
    another 4xx/5xx (with ``hint(answer)``, a short safe detail of the error body), or an
    answer that is not a JSON object. Messages never repeat the URL (it may carry a token)."""
    try:
        with time_limit(timeout, lambda: fail(f"no answer within {timeout:g} s", timed_out=True)):
            response = requests.request(method, url, timeout=(timeout, timeout), **kwargs)
            status = response.status_code
            body = response.content  # read inside the time limit
    except requests.Timeout:
        raise fail(f"no answer within {timeout:g} s", timed_out=True) from None
    except requests.RequestException as error:
        # Only the class name: the message of a requests error repeats the URL.
        raise fail(f"could not reach the provider ({type(error).__name__})") from None
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = None
    if status in tolerate:
        return status, answer if isinstance(answer, dict) else {}
    if status in (401, 403):
        raise fail(f"HTTP {status}: credentials refused")
    if status >= 400:
        raise fail(f"HTTP {status}{hint(answer)}")
    if not isinstance(answer, dict):
        raise fail(f"HTTP {status} with an answer that is not a JSON object")
    return status, answer


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
