"""The notify domain: which integration events become action-log entries, and how they read.

Pure code. Every operation yields two entries for its owner (R-LOG-2): one when it starts
("which operation is running") and one with its result; logins, logouts, password resets,
new storages and keys, authenticator apps, API tokens (created, revoked, used from a new
address), server tags and support requests are entries too (R-LOG-1). An entry remembers the session it happened in, so the bell can show the current
session's log.
"""

from common.eventstore import NewEvent

LEVELS = ("info", "success", "error")


def _entry(data, session_id, level, title, body, operation_id=None):
    """An action-log entry for ``data["user_id"]``."""
    return {"user_id": data["user_id"], "session_id": session_id, "operation_id": operation_id,
            "level": level, "title": title, "body": body}


# operation event -> (level, body when the event carries no ``detail``)
OPERATION_ENTRIES = {"operation_started": ("info", "Started."), "operation_succeeded": ("success", "Done."),
                     "operation_failed": ("error", "Failed.")}
LOGIN_METHODS = {"password": "with your password", "sms": "with a one-time code",
                 "totp": "with your authenticator app", "recovery_code": "with a recovery code"}


def entry_for(envelope):
    """The action-log entry an integration event makes, or None."""
    kind, data = envelope["type"], envelope["data"]
    session = envelope.get("session_id")  # the session the action was taken in, if any
    if kind in OPERATION_ENTRIES:
        level, body = OPERATION_ENTRIES[kind]
        if kind != "operation_started":
            body = data.get("detail") or body
        return _entry(data, data.get("session_id"), level, data["title"], body, data["operation_id"])
    if kind == "user_logged_in":
        how = LOGIN_METHODS.get(data.get("method"), "")
        body = f"You logged in {how} from {data.get('client_ip') or 'an unknown address'}.".replace("  ", " ")
        return _entry(data, data.get("session_id"), "info", "Logged in", body)
    if kind == "user_logged_out":
        body = "You signed out on every device." if data.get("everywhere") else "You logged out."
        return _entry(data, data.get("session_id"), "info", "Logged out", body)
    if kind == "password_reset_completed":
        return _entry(data, None, "info", "Password changed",
                      "You set a new password with a reset link; every session of yours ended.")
    if kind == "authenticator_app_enrolled":
        return _entry(data, session, "info", "Authenticator app added",
                      "Logins can now be confirmed with codes from your authenticator app.")
    if kind.startswith("api_token_"):
        return _api_token_entry(kind, data, session)
    if kind == "storage_keys_rotated":
        return _entry(data, session, "success", f"New keys for storage {data['name']}",
                      "The previous access key no longer works.")
    if kind == "late_payment_credited":
        return _entry(data, None, "success", "Late payment credited",
                      f"{data['amount']} {data.get('currency', 'EUR')} arrived after the top-up had failed "
                      "and was added to your balance.",
                      data.get("operation_id"))
    if kind == "storage_created":
        return _entry(data, session, "success", f"New storage {data['name']}",
                      f"{data['limit_bytes'] / 10**9:g} GB in {data['location']}.")
    if kind == "server_tagged":
        body = f"Tagged “{data['tag']}”." if data.get("tag") else "Its tag was removed."
        return _entry(data, session, "info", f"Server {data['number']} tag changed", body)
    if kind == "storage_usage_alert":
        percent = data["percent"]
        used_gb, limit_gb = data["used_bytes"] / 10**9, data["limit_bytes"] / 10**9
        title = f"Storage {data['name']} is full" if percent >= 100 else f"Storage {data['name']} is {percent}% full"
        return _entry(data, None, "error" if percent >= 90 else "info", title,
                      f"{used_gb:.2f} GB of {limit_gb:g} GB used.")
    if kind.startswith("ticket_"):
        return _ticket_entry(kind, data, session)
    return None


def _api_token_entry(kind, data, session):
    name = f"API token “{data['name']}”"
    if kind == "api_token_created":
        expiry = f"expires {data['expires_at'][:10]}" if data.get("expires_at") else "never expires"
        return _entry(data, session, "info", f"{name} created",
                      f"Ending in …{data['hint']}; {expiry}; scopes: {', '.join(data['scopes'])}.")
    if kind == "api_token_revoked":
        body = "Every API token of yours was revoked." if data.get("reason") == "all" else "It no longer works."
        return _entry(data, session, "info", f"{name} revoked", body)
    if kind == "api_token_used_from_new_address":
        first = "used for the first time" if data.get("first_use") else "used from a new address"
        return _entry(data, None, "info" if data.get("first_use") else "error", f"{name} {first}",
                      f"From {data['client_ip']}. If this was not you, revoke the token.")
    return None


def _ticket_entry(kind, data, session):
    ticket = f"#{data['ticket_id']}: {data['subject']}"
    if kind == "ticket_opened":
        return _entry(data, session, "info", "Support request opened", ticket)
    if kind == "ticket_message_added":
        if data.get("author") == "staff":
            return _entry(data, None, "info", f"{data.get('staff_name') or 'Support'} replied to your request", ticket)
        return _entry(data, session, "info", "You replied to a support request", ticket)
    if kind == "ticket_status_changed":
        by_staff = data.get("by") == "staff"
        return _entry(data, None if by_staff else session, "success" if data["status"] == "closed" else "info",
                      f"Support request {data['status']}", ticket)
    return None


def recorded(notification_id, entry, source_event_id, created_at):
    return NewEvent("notification_created", dict(entry, notification_id=notification_id,
                                                 source_event_id=source_event_id, created_at=created_at))


def marked_read(ids):
    return NewEvent("notifications_read", {"ids": list(ids)})


def marked_all_read(up_to_position):
    return NewEvent("all_notifications_read", {"up_to_position": up_to_position})
