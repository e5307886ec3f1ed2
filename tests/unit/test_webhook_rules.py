"""Webhook rules without I/O: which events make which deliveries, the signature a receiver
checks, retry delays, endpoint validation and the SSRF guard."""

import time

import pytest

from common.errors import ValidationFailed
from services.notify import webhook_rules as rules


def envelope(event_type, **data):
    return {"event_id": "e-1", "type": event_type, "data": dict(user_id="u1", **data)}


def test_an_order_operation_succeeding_is_two_kinds_with_stable_distinct_ids():
    made = rules.webhook_events(envelope("operation_succeeded", operation_id="op1", kind="order.instant",
                                         target="ord1", status="succeeded", title="Order CX22", result={"x": 1}))
    assert [kind for kind, _, _ in made] == ["operation_succeeded", "order_completed"]
    assert made[1][2]["order_id"] == "ord1"
    ids = {rules.event_id_of("e-1", kind) for kind, _, _ in made}
    assert len(ids) == 2 and rules.event_id_of("e-1", "order_completed") in ids  # the same every time


def test_top_ups_and_late_payments_are_payment_credited_and_logins_are_nothing():
    assert [k for k, _, _ in rules.webhook_events(envelope("operation_succeeded", kind="billing.topup",
                                                            target="t1"))] == ["operation_succeeded",
                                                                               "payment_credited"]
    late = rules.webhook_events(envelope("late_payment_credited", topup_id="t2", amount="25.00", currency="EUR"))
    assert late[0][0] == "payment_credited" and late[0][2]["late"] is True
    assert rules.webhook_events(envelope("user_logged_in", session_id="s")) == []
    assert rules.webhook_events({"event_id": "e", "type": "operation_failed", "data": {}}) == []  # nobody's


def test_the_signature_verifies_and_fails_when_anything_changes():
    body = rules.body_of("evt_1", "operation_succeeded", {"a": 1}, "2026-12-06T12:00:00+00:00")
    now = time.time()
    header = rules.signature("whsec_abc", now, body)
    assert header.startswith(f"t={int(now)},v1=")
    assert rules.verify("whsec_abc", header, body, now)
    assert not rules.verify("whsec_other", header, body, now)
    assert not rules.verify("whsec_abc", header, body + b" ", now)
    assert not rules.verify("whsec_abc", header, body, now + rules.DEFAULT_TOLERANCE_SECONDS + 1)  # replayed late
    assert not rules.verify("whsec_abc", "garbage", body, now)


def test_retries_back_off_doubling_up_to_the_most():
    delays = [rules.retry_delay(n).total_seconds() for n in range(1, 12)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == rules.MAX_RETRY.total_seconds() and delays == sorted(delays)


@pytest.mark.parametrize("url, field", [
    ("http://example.com/hook", "url"),  # https only (outside the dev stack)
    ("https://user:pw@example.com/", "url"),
    ("not a url", "url"),
])
def test_a_bad_endpoint_names_the_field(url, field):
    with pytest.raises(ValidationFailed) as refused:
        rules.check_endpoint(url, ["operation_succeeded"])
    assert field in refused.value.fields


def test_kinds_are_checked_and_put_in_order():
    assert rules.check_endpoint("https://example.com/h", ["ticket_status_changed", "operation_failed"]) == [
        "operation_failed", "ticket_status_changed"]
    with pytest.raises(ValidationFailed) as refused:
        rules.check_endpoint("https://example.com/h", ["server_exploded"])
    assert "server_exploded" in refused.value.fields["kinds"][0]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.5", "169.254.169.254", "::1",
                                     "fe80::1", "100.64.0.1", "::ffff:127.0.0.1", "fc00::1"])
def test_the_ssrf_guard_refuses_internal_addresses(address):
    assert rules.address_refused(address)


def test_public_addresses_pass_and_the_dev_switch_lets_loopback_through():
    assert rules.address_refused("93.184.216.34") is None
    assert rules.address_refused("2606:2800:220:1::1") is None
    assert rules.address_refused("127.0.0.1", allow_private=True) is None
    assert rules.address_refused("0.0.0.0", allow_private=True)  # never
