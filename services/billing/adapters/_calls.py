"""What the payment adapters share: one HTTP call with a time limit that turns every
failure into ``PaymentProviderError``, the ``observe`` bookkeeping, money in the forms the
providers want, the checks of a signed webhook (headers without case, HMAC compared in
constant time, a timestamp within tolerance), and the frame of ``retrieve_payment``."""

import hashlib
import hmac
import json
import logging
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from common import outside
from services.billing.adapters import PaymentProviderError, WebhookRejected

log = logging.getLogger(__name__)

ADAPTER = "payments"
OK, FAILED, TIMEOUT = outside.OK, outside.FAILED, outside.TIMEOUT
DEFAULT_TOLERANCE_SECONDS = 300
CENT = Decimal("0.01")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PAYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_REFERENCE_LENGTH = 100
NOT_FOUND = (404, 410)  # how a provider answers for a payment it does not know


# --- calls ---------------------------------------------------------------------------------

def call(provider, method, url, timeout, tolerate=(), **kwargs):
    """One HTTP request to a provider's API: ``(status, answer)`` where ``answer`` is the
    JSON object it answered. A status in ``tolerate`` is returned as is (with ``{}`` when
    its body is not a JSON object); any other failure is a ``PaymentProviderError``
    (``common.outside.http_json``)."""
    def fail(message, timed_out=False):
        return PaymentProviderError(provider, message, timed_out=timed_out)

    return outside.http_json(method, url, timeout, fail, tolerate=tolerate, hint=_error_hint, **kwargs)


def _error_hint(answer):
    """A short, safe hint from a provider's error body: its error code or type, never its
    message (which may echo what we sent)."""
    if not isinstance(answer, dict):
        return ""
    error = answer.get("error")
    for candidate in (
        error.get("type") if isinstance(error, dict) else None,
        error.get("code") if isinstance(error, dict) else None,
        answer.get("name"),  # PayPal
        answer.get("code"),  # Revolut
    ):
        if isinstance(candidate, (str, int)) and re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", str(candidate)):
            return f" ({candidate})"
    return ""


def observed(observe, provider, attempt):
    """Run ``attempt()`` and report it to ``observe`` (``common.outside.observed``)."""
    return outside.observed(observe, ADAPTER, provider, attempt, PaymentProviderError)


def field(provider, answer, *path):
    """A required member of a provider's answer (``path`` into nested objects)."""
    value = answer
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or value == "":
        raise PaymentProviderError(provider, f"the answer has no {'.'.join(path)!r}")
    return value


# --- money and what we send ------------------------------------------------------------------

def check_payment(amount, currency, reference):
    """``(amount as a Decimal with two decimals, currency, reference)`` or ValueError."""
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise ValueError("amount must be a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("amount must be a positive number")
    if value != value.quantize(CENT):
        raise ValueError("amount must not have more than two decimals")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValueError("currency must be a three-letter ISO 4217 code in upper case")
    if not isinstance(reference, str) or not reference.strip() or len(reference) > MAX_REFERENCE_LENGTH:
        raise ValueError(f"reference must be a non-empty text of at most {MAX_REFERENCE_LENGTH} characters")
    return value.quantize(CENT), currency, reference


def is_payment_id(value):
    """Whether ``value`` has the shape of a provider's payment id (safe in a URL path)."""
    return isinstance(value, str) and bool(_PAYMENT_ID.match(value))


def money_text(amount):
    """``Decimal("25")`` → ``"25.00"``."""
    return str(Decimal(str(amount)).quantize(CENT))


def to_minor(amount):
    """Euros to cents (every currency we take has two decimals)."""
    return int(Decimal(str(amount)).quantize(CENT) * 100)


def from_minor(units):
    """Cents to ``"25.00"``."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise ValueError("not a whole number of minor units")
    return money_text(Decimal(units) / 100)


# --- webhooks --------------------------------------------------------------------------------

def lower_headers(headers):
    """``headers`` (any mapping, or werkzeug headers) with lower-case names."""
    items = headers.items() if hasattr(headers, "items") else headers
    lowered = {}
    for name, value in items:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        lowered[str(name).lower()] = str(value)
    return lowered


def utc(now):
    """``now`` as an aware UTC datetime (naive means UTC; ``None`` means the clock's)."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def hmac_hex(secret, message):
    """Hex HMAC-SHA256 of ``message`` (bytes) with ``secret`` (text)."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def any_matches(expected, candidates):
    """Whether one of ``candidates`` equals ``expected``, comparing each in constant time
    (several are sent while a provider rotates its secret)."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.strip().lower().encode("ascii", "replace"))
    return matched


def check_fresh(provider, signed_at, now, tolerance=DEFAULT_TOLERANCE_SECONDS):
    """``WebhookRejected("stale")`` unless ``signed_at`` (Unix seconds) is within
    ``tolerance`` of ``now`` — either way: a timestamp from the future is as suspect."""
    age = utc(now).timestamp() - signed_at
    if abs(age) > tolerance:
        raise WebhookRejected("stale", provider, f"signed {age:.0f} s from now, tolerance {tolerance} s")


def parse_int(provider, text, what):
    """A whole number from a signature header, else ``bad_signature``."""
    try:
        return int(text)
    except (TypeError, ValueError):
        raise WebhookRejected("bad_signature", provider, f"{what} is not a whole number") from None


def load_event(provider, raw_body):
    """The JSON object of an authentic notification, else ``malformed``."""
    try:
        event = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("malformed", provider, "the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRejected("malformed", provider, "the body is not a JSON object")
    return event


def member(provider, data, *path, kind=str):
    """A required member of a notification (``path`` into nested objects), of type ``kind``,
    else ``malformed``."""
    value = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or value == "" or (kind is not None and not isinstance(value, kind)) or isinstance(value, bool):
        raise WebhookRejected("malformed", provider, f"no valid {'.'.join(path)!r}")
    return value


def notice_amount(provider, value):
    """A decimal amount in a notification (text or number) as ``"25.00"``, else ``malformed``."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise WebhookRejected("malformed", provider, "the amount is not a number") from None
    if isinstance(value, bool) or not amount.is_finite() or amount < 0:
        raise WebhookRejected("malformed", provider, "the amount is not a valid amount")
    return money_text(amount)


def notice_currency(provider, value):
    if not isinstance(value, str) or not _CURRENCY.match(value.upper()):
        raise WebhookRejected("malformed", provider, "the currency is not a currency code")
    return value.upper()


def optional_text(value):
    """A reference echoed back: text, or ``None`` when absent or empty."""
    if value is None or value == "":
        return None
    return str(value)


class PaymentProvider:
    """What every provider adapter has: its ``name``, the base URL of its API, a time limit
    per call and the ``observe`` hook. Subclasses keep their credentials in attributes with
    a leading underscore and never show them (``repr`` names the URL only)."""

    name = None

    def __init__(self, base_url, timeout, observe=None):
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.observe = observe

    def _call(self, method, path, tolerate=(), **kwargs):
        return call(self.name, method, f"{self.base_url}{path}", self.timeout, tolerate, **kwargs)

    def _observed(self, attempt):
        return observed(self.observe, self.name, attempt)

    def _retrieve(self, provider_payment_id, get, read):
        """What every ``retrieve_payment`` does: ``get(id)`` asks the provider for the payment
        (a GET tolerating ``NOT_FOUND``) → ``(status, answer)``; ``read(answer)`` makes it a
        ``PaymentNotice``, or ``None`` while it is not final. One observed attempt; an id the
        provider does not know or an answer we cannot read is a ``PaymentProviderError``, an
        id not shaped like one a ``ValueError`` before any call."""
        if not is_payment_id(provider_payment_id):
            raise ValueError("provider_payment_id must be 1 to 128 letters, digits, '_' or '-'")

        def attempt():
            status, answer = get(provider_payment_id)
            if status in NOT_FOUND:
                raise PaymentProviderError(self.name, f"HTTP {status}: the provider knows no such payment")
            try:
                notice = read(answer)
            except WebhookRejected as error:  # the readers shared with parse_webhook
                raise PaymentProviderError(self.name, f"the payment answered is unreadable: {error.detail}") from None
            if notice is not None and notice.provider_payment_id != provider_payment_id:
                raise PaymentProviderError(self.name, "the provider answered for another payment")
            return notice

        return self._observed(attempt)

    def _rejected(self, reason, detail=None):
        return WebhookRejected(reason, self.name, detail)

    def __repr__(self):  # never the credentials
        return f"<{type(self).__name__} {self.name} {self.base_url}>"
