"""Webhooks without I/O: which integration events a customer's endpoints hear, the body
and signature of a delivery, when a failed one is tried again, and which addresses a
delivery may never reach.

Kinds (what an endpoint subscribes to): ``operation_succeeded``, ``operation_failed``
(every operation: reboots, reinstalls, orders, top-ups, storage work),
``order_completed`` (an order's server was delivered), ``payment_credited`` (a top-up, or
a late payment, reached the balance) and ``ticket_status_changed``. One integration event
can make two kinds (an order's operation succeeding is ``operation_succeeded`` and
``order_completed``); each has its own event id, derived from the source event's, so a
receiver that dedupes on the id processes each exactly once however often it is delivered.

Signature, in the style of Stripe's: the header ``Panel-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>``. A receiver recomputes it over
the raw body, compares in constant time, and refuses a ``t`` older than its tolerance
(``verify`` below does exactly that; five minutes by default).
"""

import hashlib
import hmac
import ipaddress
import json
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from common.errors import ValidationFailed

KINDS = ("operation_succeeded", "operation_failed", "order_completed", "payment_credited", "ticket_status_changed")
SIGNATURE_HEADER = "Panel-Signature"
EVENT_ID_HEADER = "Panel-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=2)
ENDPOINTS_PER_USER = 10
URL_MAX = 2000


def new_secret():
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def event_id_of(source_event_id, kind):
    """The delivery's stable event id: the same for every attempt and redelivery."""
    return "evt_" + hashlib.sha256(f"{source_event_id}:{kind}".encode()).hexdigest()[:24]


def webhook_events(envelope):
    """The ``(kind, user_id, data)`` webhook events an integration event makes (often none)."""
    kind, data = envelope["type"], envelope.get("data") or {}
    user_id = data.get("user_id") or envelope.get("user_id")
    if not user_id:
        return []
    made = []
    if kind in ("operation_succeeded", "operation_failed"):
        operation = {key: data.get(key) for key in ("operation_id", "kind", "target", "status", "title", "detail",
                                                    "created_at", "finished_at")}
        if kind == "operation_succeeded" and "result" in data:
            operation["result"] = data["result"]
        made.append((kind, operation))
        operation_kind = data.get("kind") or ""
        if kind == "operation_succeeded" and operation_kind.startswith("order."):
            made.append(("order_completed", {"order_id": data.get("target"), "operation_id": data.get("operation_id"),
                                             "title": data.get("title"), "result": data.get("result")}))
        if kind == "operation_succeeded" and operation_kind == "billing.topup":
            made.append(("payment_credited", {"topup_id": data.get("target"), "operation_id": data.get("operation_id"),
                                              "result": data.get("result"), "late": False}))
    elif kind == "late_payment_credited":
        made.append(("payment_credited", {"topup_id": data.get("topup_id"), "operation_id": data.get("operation_id"),
                                          "amount": data.get("amount"), "currency": data.get("currency"),
                                          "late": True}))
    elif kind == "ticket_status_changed":
        made.append((kind, {key: data.get(key) for key in ("ticket_id", "subject", "status", "previous_status",
                                                          "by", "at")}))
    return [(made_kind, user_id, made_data) for made_kind, made_data in made]


def body_of(event_id, kind, data, created_at):
    """The JSON body of a delivery (bytes): the same bytes for every attempt."""
    return json.dumps({"id": event_id, "type": kind, "created_at": created_at, "data": data},
                      separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret, timestamp, body):
    """The ``Panel-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={mac}"


def verify(secret, header, body, now, tolerance=DEFAULT_TOLERANCE_SECONDS):
    """What a receiver does: True when ``header`` signs ``body`` with ``secret`` and its
    timestamp is within ``tolerance`` seconds of ``now``."""
    parts = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts, first=FIRST_RETRY, most=MAX_RETRY):
    """How long to wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, …
    doubling up to 2 h (with ``first`` and ``most`` scaled for tests)."""
    return min(first * 2 ** max(0, attempts - 1), most)


def check_endpoint(url, kinds, allow_http=False):
    """A registration's URL and kinds, checked; ``ValidationFailed`` naming the field."""
    problems = {}
    parts = urlsplit(url or "")
    if len(url or "") > URL_MAX or not parts.hostname:
        problems["url"] = ["An absolute URL such as https://example.com/hooks."]
    elif parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        problems["url"] = ["Must use https."]
    elif parts.username or parts.password:
        problems["url"] = ["No credentials in the URL: verify the signature instead."]
    unknown = [kind for kind in kinds or () if kind not in KINDS]
    if not kinds:
        problems["kinds"] = [f"At least one of: {', '.join(KINDS)}."]
    elif unknown:
        problems["kinds"] = [f"Unknown: {', '.join(map(str, unknown))}; known: {', '.join(KINDS)}."]
    if problems:
        raise ValidationFailed("The webhook endpoint is invalid.", fields=problems)
    return [kind for kind in KINDS if kind in kinds]


def address_refused(address, allow_private=False):
    """Why a delivery may not go to ``address`` (an IP address), or None. Loopback,
    link-local (cloud metadata at 169.254.169.254 included), private, shared, multicast,
    reserved and unspecified addresses are refused unless ``allow_private`` (the dev stack
    and tests, whose receivers listen on 127.0.0.1)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not a unicast address"
    if allow_private:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_private or (ip.version == 4 and ip in SHARED_SPACE):
        return "a private, loopback or link-local address"
    return None


SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
