"""What the adapters share: a time limit per call, one HTTP POST that turns every failure
into ``DeliveryFailed``, and the ``observe`` bookkeeping of each attempt."""

import logging

import requests

from common import outside
from services.auth.adapters import DeliveryFailed

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT = outside.OK, outside.FAILED, outside.TIMEOUT


def time_limit(provider, seconds):
    """A whole call bounded to ``seconds`` (``common.outside.time_limit``)."""
    return outside.time_limit(seconds, lambda: DeliveryFailed(provider, f"no answer within {seconds:g} s", timed_out=True))


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
    """Run ``attempt()`` and report it to ``observe`` (``common.outside.observed``)."""
    return outside.observed(observe, adapter, provider, attempt, DeliveryFailed)