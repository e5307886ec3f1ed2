"""Which integration events become action-log entries, and how they read (R-LOG-1/2)."""

from services.notify.domain import entry_for


def envelope(kind, data, session_id="s-1"):
    return {"type": kind, "data": data, "session_id": session_id}


def test_a_password_reset_is_an_entry_outside_any_session():
    entry = entry_for(envelope("password_reset_completed", {"user_id": "u1", "at": "2026-01-01T00:00:00+00:00"}))
    assert (entry["user_id"], entry["session_id"], entry["title"]) == ("u1", None, "Password changed")
    assert "every session" in entry["body"]


def test_a_new_storage_is_an_entry_of_the_session_that_created_it():
    entry = entry_for(envelope("storage_created", {
        "storage_id": "st1", "user_id": "u1", "name": "Backups", "limit_bytes": 250 * 10**9, "location": "NL",
        "s3uid": "abc", "iam_user": "panel-abc", "idempotency_key": None}))
    assert (entry["user_id"], entry["session_id"], entry["level"]) == ("u1", "s-1", "success")
    assert (entry["title"], entry["body"]) == ("New storage Backups", "250 GB in NL.")


def test_a_server_tag_change_names_the_server_and_the_tag():
    tagged = entry_for(envelope("server_tagged", {"server_id": "sv1", "user_id": "u1", "number": "S-1001",
                                                  "tag": "web-1"}))
    assert (tagged["title"], tagged["body"]) == ("Server S-1001 tag changed", "Tagged “web-1”.")
    removed = entry_for(envelope("server_tagged", {"server_id": "sv1", "user_id": "u1", "number": "S-1001",
                                                   "tag": None}))
    assert removed["body"] == "Its tag was removed."


def test_security_relevant_changes_are_entries():
    app = entry_for(envelope("authenticator_app_enrolled", {"user_id": "u1", "at": "2026-01-01T00:00:00+00:00"}))
    assert (app["user_id"], app["session_id"], app["title"]) == ("u1", "s-1", "Authenticator app added")
    keys = entry_for(envelope("storage_keys_rotated", {"storage_id": "st1", "user_id": "u1", "name": "Backups",
                                                       "at": "2026-01-01T00:00:00+00:00"}))
    assert (keys["title"], keys["level"]) == ("New keys for storage Backups", "success")


def test_a_late_payment_is_an_entry_of_its_failed_operation():
    entry = entry_for(envelope("late_payment_credited", {"topup_id": "t1", "user_id": "u1", "amount": "35.00",
                                                         "method": "paypal", "operation_id": "op-1",
                                                         "at": "2026-01-02T00:00:00+00:00"}))
    assert (entry["operation_id"], entry["level"], entry["title"]) == ("op-1", "success", "Late payment credited")
    assert entry["body"].startswith("35.00 EUR arrived")


def test_events_that_are_not_actions_make_no_entry():
    assert entry_for(envelope("invoice_paid", {"invoice_id": "i1", "user_id": "u1"})) is None


def test_api_tokens_made_revoked_and_used_from_a_new_address_are_entries():
    created = entry_for(envelope("api_token_created", {
        "token_id": "tok_1", "user_id": "u1", "name": "ci", "scopes": ["servers:write"], "hint": "x9Qa",
        "expires_at": "2027-03-06T12:00:00+00:00", "allowed_ips": [], "at": "2026-12-06T12:00:00+00:00"}))
    assert (created["session_id"], created["title"]) == ("s-1", "API token “ci” created")
    assert created["body"] == "Ending in …x9Qa; expires 2027-03-06; scopes: servers:write."
    revoked = entry_for(envelope("api_token_revoked", {"token_id": "tok_1", "user_id": "u1", "name": "ci",
                                                       "reason": "customer", "at": "2026-12-06T12:00:00+00:00"}))
    assert revoked["title"] == "API token “ci” revoked"
    moved = entry_for(envelope("api_token_used_from_new_address", {
        "token_id": "tok_1", "user_id": "u1", "name": "ci", "client_ip": "198.51.100.7", "first_use": False,
        "at": "2026-12-06T12:00:00+00:00"}))
    assert (moved["level"], moved["session_id"]) == ("error", None)
    assert "198.51.100.7" in moved["body"] and "revoke" in moved["body"]
