"""What a customer does on the panel, as steps the screen tests share: logging in (reading
the 2FA code from the SMS stand-in), reading pop-ups, and waiting for the live state."""

import re

from playwright.sync_api import expect

from tests.browser.support import latest_sms_code, sms_codes


def user(stack, username):
    """The demo customer ``username`` of the stack (its current password included)."""
    return next(item for item in stack["users"] if item["username"] == username)


def log_in(page, stack, username="demo", next_path="/"):
    """Log in through the login form; the 2FA step reads the code from the SMS inbox.
    Ends on the first screen (the server list unless ``next_path`` says otherwise)."""
    customer = user(stack, username)
    seen = len(sms_codes(stack, customer)) if customer["two_factor"] else 0
    page.goto(next_path)
    page.get_by_label("Username").fill(customer["username"])
    page.get_by_label("Password").fill(customer["password"])
    page.get_by_role("button", name="Log in").click()
    if customer["two_factor"]:
        page.get_by_label("Code").fill(latest_sms_code(stack, customer, after=seen))
        page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name=re.compile(f"Account menu for {customer['username']}"))).to_be_visible()
    return customer


def toast_titles(page):
    """The titles of the pop-ups now on screen (top right)."""
    return page.locator(".toast .toast-title").all_inner_texts()


def session_cookie(page):
    """The value of the panel's session cookie in this page's browser context, or None."""
    return next((cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "session"), None)
