"""API tokens and webhooks in the browser (issue 19): a token made with scopes and an
address range, its secret shown once and working with curl-like requests, its last use
shown, revoked; a webhook endpoint added (its secret shown once), a test event sent to a
real receiver and listed as delivered with the receiver's status code, then deleted."""

import re

import requests
from playwright.sync_api import expect

from tests.browser.panel import log_in
from tests.browser.support import axe_violations, describe_violations, screenshot
from tests.support import wait_for
from tests.webhook_receiver import Receiver


def test_an_api_token_made_in_the_panel_works_once_shown_and_is_revoked(page, stack):
    log_in(page, stack, "other")
    page.get_by_role("link", name="API & webhooks").click()
    expect(page.get_by_role("heading", name="API & webhooks")).to_be_visible()
    page.get_by_role("button", name="New token").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("browser cron")
    dialog.get_by_label("Servers: Read & write").check()
    dialog.get_by_label("Action log: Read", exact=True).check()
    dialog.get_by_label("Allowed addresses").fill("10.0.0.0/33")
    dialog.get_by_role("button", name="Create token").click()
    expect(dialog.locator("#field-allowed_ips-error")).to_be_visible()  # the API's error at the field
    dialog.get_by_label("Allowed addresses").fill("127.0.0.0/8")
    screenshot(page, "developer-new-token")
    dialog.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-secret")
    expect(secret).to_have_text(re.compile(r"^hpat_\w{36}$"))
    token = secret.inner_text()
    screenshot(page, "developer-token-secret")
    page.get_by_role("button", name="I have stored it").click()
    expect(page.get_by_test_id("new-secret")).to_have_count(0)

    api = f"{stack['gateway']}/api/v1"
    servers = requests.get(f"{api}/servers", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert servers.status_code == 200 and servers.json()["total"] == 2
    page.reload()
    row = page.locator("tr").filter(has_text="browser cron")
    expect(row).to_contain_text(f"…{token[-4:]}")
    expect(row).to_contain_text("servers:write")
    expect(row).to_contain_text("Only from 127.0.0.0/8")
    expect(row).to_contain_text("127.0.0.1")  # last used from
    screenshot(page, "developer-tokens")
    assert not axe_violations(page), describe_violations(axe_violations(page))

    page.get_by_role("button", name="Revoke token browser cron").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("Revoked")
    assert requests.get(f"{api}/servers", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401


def test_a_webhook_endpoint_gets_a_signed_test_event_listed_as_delivered(page, stack):
    receiver = Receiver()
    try:
        log_in(page, stack, "other")
        page.goto("/developer?tab=webhooks")  # the tab has an address of its own
        expect(page.get_by_role("tab", name="Webhooks")).to_have_attribute("aria-selected", "true")
        page.get_by_role("button", name="Add endpoint").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Endpoint URL").fill(receiver.url)
        dialog.get_by_label("Ticket status changed").check()
        screenshot(page, "developer-new-webhook")
        dialog.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_test_id("new-secret")
        expect(secret).to_have_text(re.compile(r"^whsec_"))
        receiver.secret = secret.inner_text()
        page.get_by_role("button", name="I have stored it").click()

        endpoint = page.locator(".endpoint-list li").filter(has_text=receiver.url)
        expect(endpoint).to_contain_text("Operation succeeded · Operation failed · Ticket status changed")
        expect(endpoint).to_contain_text("Active")
        endpoint.get_by_role("button", name="Deliveries").click()
        expect(endpoint).to_contain_text("Nothing sent yet.")
        endpoint.get_by_role("button", name="Send test event").click()
        wait_for(lambda: receiver.of_kind("webhook_test"), timeout=30, message="the test event")
        assert all(attempt["signed"] for attempt in receiver.attempts)
        endpoint.get_by_role("button", name="Refresh").click()
        delivered = endpoint.locator("tr").filter(has_text="webhook_test")
        expect(delivered).to_contain_text("Delivered", timeout=15_000)
        expect(delivered).to_contain_text("200")
        screenshot(page, "developer-webhooks")
        assert not axe_violations(page), describe_violations(axe_violations(page))

        page.get_by_role("button", name=f"Delete endpoint {receiver.url}").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()
    finally:
        receiver.close()
