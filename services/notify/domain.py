"""The notify domain: which integration events become action-log entries, and how they read.

Pure code. Every operation yields two entries for its owner (R-LOG-2): one when it starts
("which operation is running") and one with its result; logins and logouts are entries too
(R-LOG-1). An entry remembers the session it happened in, so the bell can show the current
session's log.
"""

from common.eventstore import NewEvent

LEVELS = ("info", "success", "error")


def entry_for(envelope):
    """The action-log entry an integration event makes, or None."""
    kind, data = envelope["type"], envelope["data"]
    if kind == "operation_started":
        return {"user_id": data["user_id"], "session_id": data.get("session_id"), "operation_id": data["operation_id"],
                "level": "info", "title": data["title"], "body": "Started."}
    if kind == "operation_succeeded":
        return {"user_id": data["user_id"], "session_id": data.get("session_id"), "operation_id": data["operation_id"],
                "level": "success", "title": data["title"], "body": data.get("detail") or "Done."}
    if kind == "operation_failed":
        return {"user_id": data["user_id"], "session_id": data.get("session_id"), "operation_id": data["operation_id"],
                "level": "error", "title": data["title"], "body": data.get("detail") or "Failed."}
    if kind == "user_logged_in":
        how = {"password": "with your password", "sms": "with a one-time code", "totp": "with your authenticator app",
               "recovery_code": "with a recovery code"}.get(data.get("method"), "")
        return {"user_id": data["user_id"], "session_id": data.get("session_id"), "operation_id": None,
                "level": "info", "title": "Logged in", "body": f"You logged in {how} from {data.get('client_ip') or 'an unknown address'}.".replace("  ", " ")}
    if kind == "user_logged_out":
        body = "You signed out on every device." if data.get("everywhere") else "You logged out."
        return {"user_id": data["user_id"], "session_id": data.get("session_id"), "operation_id": None,
                "level": "info", "title": "Logged out", "body": body}
    return None


def recorded(notification_id, entry, source_event_id, created_at):
    return NewEvent("notification_created", dict(entry, notification_id=notification_id,
                                                 source_event_id=source_event_id, created_at=created_at))


def marked_read(ids):
    return NewEvent("notifications_read", {"ids": list(ids)})


def marked_all_read(up_to_position):
    return NewEvent("all_notifications_read", {"up_to_position": up_to_position})
