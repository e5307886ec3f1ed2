"""Billing and support in the browser: Account Information, a top-up (the minimum refused
at the field, the six methods with what they accept, bank wire's reference, a card
payment paid in the sandbox whose balance updates on the page), and support requests
(rules shown before upload, an attachment, a reply, and a status that an operator changes
with the staff tool appearing without a reload)."""

import re

from playwright.sync_api import expect

from tests.browser.panel import log_in
from tests.browser.support import axe_violations, describe_violations, screenshot, staff

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


def balance_value(text):
    return float(re.sub(r"[^0-9.]", "", text))


def test_top_up_by_bank_wire_and_by_card_paid_in_the_sandbox(page, stack):
    log_in(page, stack, "demo")
    page.get_by_role("link", name="Billing").click()
    balance = page.locator("#balance")
    expect(balance).to_have_text(re.compile(r"\d"))
    expect(page.get_by_role("heading", name="Account Information")).to_be_visible()
    # The demo keeps an overdue server: its renewal invoice (838 EUR) is more than the balance.
    expect(page.locator("dl").get_by_text("Overdue")).to_be_visible()
    expect(page.get_by_role("table").first.get_by_text("Overdue")).to_be_visible()
    screenshot(page, "billing")
    assert not axe_violations(page), describe_violations(axe_violations(page))

    page.get_by_role("button", name="Top up").click()
    dialog = page.get_by_role("dialog")
    methods = dialog.get_by_role("radio")
    expect(methods).to_have_count(6)
    expect(dialog.locator(".method-accepts").first).to_contain_text("Accepts:")
    dialog.get_by_label(re.compile(r"^Amount")).fill("19.99")
    dialog.get_by_role("button", name="Continue to payment").click()
    expect(dialog.locator("#field-amount-error")).to_have_text("The minimum top-up is 20.")
    screenshot(page, "billing-topup-minimum")

    dialog.get_by_label(re.compile(r"^Amount")).fill("30")
    dialog.get_by_role("radio", name=re.compile("bank", re.I)).check()
    dialog.get_by_role("button", name="Continue to payment").click()
    reference = dialog.locator("#wire-reference")
    expect(reference).to_have_text(re.compile(r"\S{4,}"))
    expect(dialog).to_contain_text("IBAN")
    screenshot(page, "billing-topup-bank-wire")
    dialog.get_by_role("button", name="Close").click()

    before = balance_value(balance.inner_text())
    page.get_by_role("button", name="Top up").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile(r"^Amount")).fill("25")
    dialog.get_by_role("radio", name=re.compile("stripe", re.I)).check()
    dialog.get_by_role("button", name="Continue to payment").click()
    pay = dialog.get_by_role("link", name="Open the payment page")
    expect(pay).to_be_visible()
    assert pay.get_attribute("target") == "_blank"
    checkout = page.context.new_page()  # the payment page, in a tab of its own as the link opens it
    checkout.goto(pay.get_attribute("href"))
    screenshot(checkout, "billing-sandbox-checkout")
    checkout.get_by_role("button", name=re.compile("pay", re.I)).first.click()
    expect(dialog.get_by_text("Payment received")).to_be_visible(timeout=30_000)
    dialog.get_by_role("button", name="Close").click()
    expect(balance).to_have_text(re.compile(r"\d"))
    expect(page.locator(".balance-chip strong")).to_contain_text(f"{before + 25:,.2f}")
    assert balance_value(balance.inner_text()) == before + 25
    expect(page.locator("table").last).to_contain_text("+EUR 25.00")


def test_a_request_with_an_attachment_a_reply_and_a_status_changed_by_staff_live(page, stack, tmp_path):
    log_in(page, stack, "demo")
    page.get_by_role("link", name="Support").click()
    expect(page.get_by_text("Show tickets with status:")).to_be_visible()
    page.get_by_role("button", name="New request").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".field-hint")).to_contain_text(re.compile(r"Up to \d+ files, .* each"))
    screenshot(page, "support-new-request")
    dialog.get_by_label("Subject").fill("Server will not boot")
    dialog.get_by_label("Description").fill("After the reboot it stays dark.")
    screenshot_file = tmp_path / "screen.png"
    screenshot_file.write_bytes(PNG)
    dialog.get_by_label("Attachments").set_input_files(str(screenshot_file))
    dialog.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("heading", name="Server will not boot")).to_be_visible()
    status = page.locator("#ticket-status")
    expect(status).to_have_text("Open")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("screen.png")).click()
    assert open(download.value.path(), "rb").read() == PNG

    page.get_by_label("Reply", exact=True).fill("It has a blinking cursor now.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".message")).to_have_count(2)

    ticket_id = page.url.rstrip("/").rsplit("/", 1)[1]
    staff(stack, "reply", ticket_id, "--as", "Alex", "--body", "We are on it.")
    expect(page.locator(".message-staff")).to_contain_text("We are on it.", timeout=30_000)
    expect(status).to_have_text("Answered")
    staff(stack, "close", ticket_id, "--as", "Alex")
    expect(status).to_have_text("Closed", timeout=30_000)  # no reload: the live stream said so
    screenshot(page, "support-ticket")

    page.get_by_role("link", name="Back").click()
    page.get_by_text("Closed", exact=True).first.click()
    expect(page.locator(".ticket-row").filter(has_text="Server will not boot")).to_be_visible()
    page.get_by_text("Open", exact=True).first.click()
    expect(page.locator(".ticket-row").filter(has_text="Server will not boot")).to_have_count(0)
    page.get_by_role("button", name="Refresh").click()
    screenshot(page, "support")
    assert not axe_violations(page), describe_violations(axe_violations(page))
