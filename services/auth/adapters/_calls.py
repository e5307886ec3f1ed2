"""What the auth adapters share: a time limit per call, one HTTP POST that turns every
failure into ``DeliveryFailed`` (``common.outside.http_json``), and the ``observe``
bookkeeping of each attempt."""

import logging

from common import outside
from services.auth.adapters import DeliveryFailed

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT = outside.OK, outside.FAILED, outside.TIMEOUT


def time_limit(provider, seconds):
    """A whole call bounded to ``seconds`` (``common.outside.time_limit``)."""
    return outside.time_limit(seconds, lambda: DeliveryFailed(provider, f"no answer within {seconds:g} s", timed_out=True))


def post(provider, url, timeout, **kwargs):
    """POST to a provider's HTTP API; the answer's JSON object, or ``DeliveryFailed``
    (``common.outside.http_json``)."""
    def fail(message, timed_out=False):
        return DeliveryFailed(provider, message, timed_out=timed_out)

    return outside.http_json("POST", url, timeout, fail, **kwargs)[1]


def field(provider, answer, name):
    """A required member of a provider's answer (the message or call id)."""
    value = answer.get(name)
    if not value:
        raise DeliveryFailed(provider, f"the answer has no {name!r}")
    return str(value)


def observed(observe, adapter, provider, attempt):
    """Run ``attempt()`` and report it to ``observe`` (``common.outside.observed``)."""
    return outside.observed(observe, adapter, provider, attempt, DeliveryFailed)