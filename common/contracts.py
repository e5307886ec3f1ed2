"""Integration events: the facts one service publishes for the others.

This is the one list of integration event types and their payloads (docs/events.md is
generated from it by ``panel events-doc``). Every other event stays inside its service.

Each is published by the outbox relay to the topic exchange ``<source>.events`` with the
event type as routing key (a *work* event, ``operation_requested``, to the service's own
``<source>.work`` instead: only its operation worker consumes it, no other service sees it), as this envelope (consumers must ignore fields they do not
know, so adding a field never breaks a running consumer)::

    {"event_id", "type", "source", "stream_id", "version", "position", "occurred_at",
     "user_id", "session_id", "correlation_id", "causation_id", "request_id", "data"}
"""

from dataclasses import dataclass

ENVELOPE_VERSION = 1

# The operation's view as every operation_* event carries it in ``data``.
OPERATION_FIELDS = (
    "operation_id", "user_id", "session_id", "service", "kind", "target", "status",
    "title", "detail", "created_at", "started_at", "finished_at",
)


@dataclass(frozen=True)
class IntegrationEvent:
    type: str
    description: str
    fields: tuple
    # A work event goes to the service's own ``<source>.work`` exchange, not ``<source>.events``.
    work: bool = False


OPERATION_EVENTS = (
    IntegrationEvent(
        "operation_requested",
        "An operation was accepted (status pending). A work event: the owning service's "
        "operation worker consumes it (a durable queue, acked after the work), so accepted work "
        "survives any crash; no other service receives it.",
        OPERATION_FIELDS + ("params",), work=True,
    ),
    IntegrationEvent(
        "operation_started", "Work on an operation began (status running).", OPERATION_FIELDS
    ),
    IntegrationEvent(
        "operation_succeeded", "An operation finished well (status succeeded).",
        OPERATION_FIELDS + ("result",),
    ),
    IntegrationEvent(
        "operation_failed", "An operation failed; ``detail`` says why (status failed).",
        OPERATION_FIELDS,
    ),
)

AUTH_EVENTS = (
    IntegrationEvent(
        "user_logged_in", "A customer logged in (after the second factor when enabled).",
        ("user_id", "session_id", "method", "client_ip", "at"),
    ),
    IntegrationEvent(
        "user_logged_out", "A customer logged out (``everywhere``: every session ended).",
        ("user_id", "session_id", "everywhere", "at"),
    ),
    IntegrationEvent(
        "authenticator_app_enrolled", "A customer added an authenticator app (TOTP) as a second factor.",
        ("user_id", "at"),
    ),
    IntegrationEvent(
        "password_reset_completed", "A customer set a new password with a reset link; "
        "every session of theirs has ended.", ("user_id", "at"),
    ),
    IntegrationEvent(
        "api_token_created", "A customer created an API token (``expires_at`` null: never expires; "
        "``hint``: its last four characters; the secret itself is in no event).",
        ("token_id", "user_id", "name", "scopes", "expires_at", "allowed_ips", "hint", "at"),
    ),
    IntegrationEvent(
        "api_token_revoked", "An API token was revoked (``reason``: ``customer`` or ``all``).",
        ("token_id", "user_id", "name", "reason", "at"),
    ),
    IntegrationEvent(
        "api_token_used_from_new_address", "An API token was used from a client address it had not "
        "been used from (``first_use``: its first use at all).",
        ("token_id", "user_id", "name", "client_ip", "first_use", "at"),
    ),
)

INVENTORY_EVENTS = (
    IntegrationEvent(
        "server_tagged", "A customer changed a server's tag (``tag`` null: removed).",
        ("server_id", "user_id", "number", "tag"),
    ),
    IntegrationEvent(
        "server_provisioned", "A server now belongs to a customer (billing starts renewing it).",
        ("server_id", "user_id", "number", "location", "plan", "hardware", "ips", "os", "price_month", "paid_until",
         "bmc", "tag", "power"),
    ),
)

BILLING_EVENTS = (
    IntegrationEvent(
        "late_payment_credited", "A payment arrived for a top-up that had already failed (expired, or a "
        "failure notice came first) and was credited all the same.",
        ("topup_id", "user_id", "amount", "currency", "method", "operation_id", "at"),
    ),
    IntegrationEvent(
        "invoice_overdue", "A renewal invoice could not be paid from the balance: its server is overdue.",
        ("invoice_id", "user_id", "server_id", "amount"),
    ),
    IntegrationEvent(
        "invoice_paid", "A renewal invoice was paid: its server is paid until ``paid_until``.",
        ("invoice_id", "user_id", "server_id", "paid_on", "paid_until"),
    ),
)

STORAGE_EVENTS = (
    IntegrationEvent(
        "storage_created", "A customer created an S3 storage (its keys are issued in the same "
        "transaction and never published).",
        ("storage_id", "user_id", "name", "limit_bytes", "location", "s3uid", "iam_user", "idempotency_key"),
    ),
    IntegrationEvent(
        "storage_keys_rotated", "A customer replaced a storage's access key; the previous one stopped "
        "working (the keys themselves are never published).",
        ("storage_id", "user_id", "name", "at"),
    ),
    IntegrationEvent(
        "storage_usage_alert", "A storage's used bytes crossed 80, 90 or 100 % of its limit (once per "
        "threshold until usage falls below it again).",
        ("storage_id", "user_id", "name", "percent", "used_bytes", "limit_bytes", "at"),
    ),
)

SUPPORT_EVENTS = (
    IntegrationEvent(
        "ticket_opened", "A customer opened a support request.",
        ("ticket_id", "user_id", "subject", "server_id", "at"),
    ),
    IntegrationEvent(
        "ticket_message_added", "A message was added to a request; ``author`` is ``customer`` or ``staff``.",
        ("ticket_id", "user_id", "subject", "message_id", "author", "staff_name", "attachments", "at"),
    ),
    IntegrationEvent(
        "ticket_status_changed", "A request's status changed (open, answered, closed, reopened); ``by`` is "
        "``customer`` or ``staff``.",
        ("ticket_id", "user_id", "subject", "status", "previous_status", "by", "at"),
    ),
)

NOTIFY_EVENTS = (
    IntegrationEvent(
        "notification_created", "A new action-log entry; gateways push it to the customer's live streams "
        "(the envelope's ``position`` is its stream id).",
        ("notification_id", "user_id", "session_id", "operation_id", "level", "title", "body", "created_at",
         "source_event_id"),
    ),
)



def notification_view(entry, position, read=False):
    """An action-log entry as the API shows it (the list, the live stream, the missed entries
    a stream replays) from either of its two sources: a stored notification row or the
    ``data`` of a ``notification_created`` event. One shape, built in one place."""
    return {"id": entry["notification_id"], "position": position, "operation_id": entry.get("operation_id"),
            "session_id": entry.get("session_id"), "level": entry["level"], "title": entry["title"],
            "body": entry["body"], "created_at": entry["created_at"], "read": read}


# source service -> the integration events it publishes
INTEGRATION_EVENTS = {
    "auth": OPERATION_EVENTS + AUTH_EVENTS,
    "inventory": OPERATION_EVENTS + INVENTORY_EVENTS,
    "orders": OPERATION_EVENTS,
    "storage": OPERATION_EVENTS + STORAGE_EVENTS,
    "billing": OPERATION_EVENTS + BILLING_EVENTS,
    "support": OPERATION_EVENTS + SUPPORT_EVENTS,
    "notify": NOTIFY_EVENTS,
}


WORK_EVENT_TYPES = frozenset(event.type for event in OPERATION_EVENTS if event.work)


def exchange_name(source, event_type):
    """The exchange the outbox relay publishes ``source``'s ``event_type`` to."""
    return f"{source}.work" if event_type in WORK_EVENT_TYPES else f"{source}.events"


def integration_types(source):
    """The event types of ``source`` that the outbox relay publishes."""
    return frozenset(event.type for event in INTEGRATION_EVENTS.get(source, ()))


def envelope(event, source):
    """The published form of a recorded event."""
    metadata = event.metadata
    return {
        "envelope_version": ENVELOPE_VERSION,
        "event_id": metadata["event_id"],
        "type": event.type,
        "source": source,
        "stream_id": event.stream_id,
        "version": event.version,
        "position": event.position,
        "occurred_at": event.recorded_at.isoformat(),
        "user_id": metadata.get("user_id"),
        "session_id": metadata.get("session_id"),
        "correlation_id": metadata.get("correlation_id"),
        "causation_id": metadata.get("causation_id"),
        "request_id": metadata.get("request_id"),
        "data": event.data,
    }


def events_doc():
    """Markdown listing every integration event, for docs/events.md."""
    lines = ["# Integration events", "", __doc__.split("\n\n", 1)[1].strip(), ""]
    for source, events in INTEGRATION_EVENTS.items():
        if not events:
            continue
        lines += [f"## {source} (exchange `{source}.events`)", "", "| type | data fields | meaning |", "|---|---|---|"]
        for event in events:
            where = f" (on `{source}.work`)" if event.work else ""
            lines.append(f"| `{event.type}`{where} | {', '.join(event.fields)} | {event.description} |")
        lines.append("")
    return "\n".join(lines)
