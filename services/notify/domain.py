"""The notify domain: which integration events become action-log entries, and how they read.

Pure code. Every operation yields two entries for its owner (R-LOG-2): one when it starts
("which operation is running") and one with its result; logins, logouts, password resets,
new storages and keys, authenticator apps, server tags and support requests are entries
too (R-LOG-1). An entry remembers the session it happened in, so the bell can show the current
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
    if kind == "password_reset_completed":
        return {"user_id": data["user_id"], "session_id": None, "operation_id": None, "level": "info",
                "title": "Password changed",
                "body": "You set a new password with a reset link; every session of yours ended."}
    if kind == "authenticator_app_enrolled":
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "info", "title": "Authenticator app added",
                "body": "Logins can now be confirmed with codes from your authenticator app."}
    if kind == "storage_keys_rotated":
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "success", "title": f"New keys for storage {data['name']}",
                "body": "The previous access key no longer works."}
    if kind == "late_payment_credited":
        return {"user_id": data["user_id"], "session_id": None, "operation_id": data.get("operation_id"),
                "level": "success", "title": "Late payment credited",
                "body": f"{data['amount']} EUR arrived after the top-up had expired and was added to your balance."}
    if kind == "storage_created":
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "success", "title": f"New storage {data['name']}",
                "body": f"{data['limit_bytes'] / 10**9:g} GB in {data['location']}."}
    if kind == "server_tagged":
        body = f"Tagged “{data['tag']}”." if data.get("tag") else "Its tag was removed."
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "info", "title": f"Server {data['number']} tag changed", "body": body}
    if kind == "storage_usage_alert":
        percent = data["percent"]
        used_gb, limit_gb = data["used_bytes"] / 10**9, data["limit_bytes"] / 10**9
        title = f"Storage {data['name']} is full" if percent >= 100 else f"Storage {data['name']} is {percent}% full"
        return {"user_id": data["user_id"], "session_id": None, "operation_id": None,
                "level": "error" if percent >= 90 else "info", "title": title,
                "body": f"{used_gb:.2f} GB of {limit_gb:g} GB used."}
    if kind == "ticket_opened":
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "info", "title": "Support request opened", "body": f"#{data['ticket_id']}: {data['subject']}"}
    if kind == "ticket_message_added":
        if data.get("author") == "staff":
            who = data.get("staff_name") or "Support"
            return {"user_id": data["user_id"], "session_id": None, "operation_id": None, "level": "info",
                    "title": f"{who} replied to your request", "body": f"#{data['ticket_id']}: {data['subject']}"}
        return {"user_id": data["user_id"], "session_id": envelope.get("session_id"), "operation_id": None,
                "level": "info", "title": "You replied to a support request",
                "body": f"#{data['ticket_id']}: {data['subject']}"}
    if kind == "ticket_status_changed":
        by_staff = data.get("by") == "staff"
        return {"user_id": data["user_id"], "session_id": None if by_staff else envelope.get("session_id"),
                "operation_id": None, "level": "success" if data["status"] == "closed" else "info",
                "title": f"Support request {data['status']}", "body": f"#{data['ticket_id']}: {data['subject']}"}
    return None


def recorded(notification_id, entry, source_event_id, created_at):
    return NewEvent("notification_created", dict(entry, notification_id=notification_id,
                                                 source_event_id=source_event_id, created_at=created_at))


def marked_read(ids):
    return NewEvent("notifications_read", {"ids": list(ids)})


def marked_all_read(up_to_position):
    return NewEvent("all_notifications_read", {"up_to_position": up_to_position})
