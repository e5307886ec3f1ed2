"""S3 storage in the browser (R-S3): the list with Storage, Limit (GB), Location and s3uid,
creating a storage (errors at the field), buckets (a naming error at the field, create,
delete), the Overview charts over a chosen period, and the Credentials tab."""

import re

from playwright.sync_api import expect

from tests.browser.panel import log_in
from tests.browser.support import axe_violations, describe_violations, screenshot


def test_create_a_storage_manage_buckets_read_usage_and_credentials(page, stack):
    log_in(page, stack, "demo")
    page.get_by_role("link", name="S3 storage").click()
    expect(page.get_by_role("heading", name="Your separate S3 Storages")).to_be_visible()

    page.get_by_role("button", name="Create storage").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Location")).to_be_visible()
    dialog.get_by_label("Limit (GB)").fill("0")
    dialog.get_by_label("Storage").fill("browser-store")
    dialog.get_by_role("button", name="Create storage").click()
    expect(dialog.locator("#field-limit_gb-error")).to_be_visible()
    dialog.get_by_label("Limit (GB)").fill("50")
    dialog.get_by_role("button", name="Create storage").click()
    expect(page.get_by_role("heading", name="browser-store")).to_be_visible(timeout=30_000)

    page.get_by_role("button", name="Add new bucket").click()
    page.get_by_label("Bucket name").fill("Bad_Name")
    page.get_by_role("button", name="Create new bucket").click()
    error = page.locator("#bucket-name-error")
    expect(error).to_be_visible()
    assert page.get_by_label("Bucket name").get_attribute("aria-invalid") == "true"
    screenshot(page, "storage-bucket-name-error")
    page.get_by_label("Bucket name").fill("browser-logs")
    page.get_by_role("button", name="Create new bucket").click()
    bucket = page.locator(".bucket").filter(has_text="browser-logs")
    expect(bucket).to_be_visible()
    expect(bucket.locator(".badge")).to_have_count(0, timeout=30_000)  # creating → active
    screenshot(page, "storage-buckets")
    assert not axe_violations(page), describe_violations(axe_violations(page))

    page.get_by_role("button", name="Delete bucket browser-logs").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile("Type the storage name")).fill("browser-logs")
    dialog.get_by_role("button", name="Delete bucket browser-logs").click()
    expect(page.locator(".bucket").filter(has_text="browser-logs")).to_have_count(0, timeout=30_000)

    page.get_by_role("tab", name="Overview").click()
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(2)
    expect(charts.nth(0)).to_contain_text("Storage usage")
    expect(charts.nth(1)).to_contain_text("Bandwidth usage")
    expect(page.locator("figure.chart canvas").first).to_have_attribute("aria-label", re.compile("Storage usage"))
    page.get_by_label("Period").select_option("7d")
    expect(page).to_have_url(re.compile(r"period=7d"))
    expect(charts).to_have_count(2)
    screenshot(page, "storage-overview")

    page.get_by_role("tab", name="Credentials").click()
    secret = page.locator("#secret-key")
    expect(secret).to_have_text(re.compile("^•+$"))
    access_key = page.locator("#access-key").inner_text()
    page.get_by_role("button", name="Show secret").click()
    expect(secret).not_to_have_text(re.compile("^•+$"))
    expect(page.get_by_text("Region")).to_be_visible()
    screenshot(page, "storage-credentials")
    page.get_by_role("button", name="Rotate keys").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile("Type the storage name")).fill("browser-store")
    dialog.get_by_role("button", name="Rotate keys").click()
    expect(page.locator("#access-key")).not_to_have_text(access_key, timeout=30_000)

    page.get_by_role("link", name="Back").click()
    row = page.locator("tr").filter(has_text="browser-store")
    expect(row).to_contain_text("50")
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"\S+"))  # s3uid
    screenshot(page, "storage-list")
