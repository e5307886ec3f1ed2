"""Logging in and out in the browser (R-AUTH-1..5, R-AUTH-7): the password step, the 2FA
step with its countdown, a wrong code, the SMS-via-another-provider and voice fallbacks,
a recovery code field, password recovery through the e-mailed link, and logging out."""

import re

import requests
from playwright.sync_api import expect

from tests.browser.panel import log_in, session_cookie, user
from tests.browser.support import latest_sms_code, screenshot, sms_codes
from tests.support import wait_for


def test_a_wrong_password_says_so_and_stays_on_the_form(page, stack):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    assert session_cookie(page) is None


def test_two_factor_login_with_countdown_wrong_code_then_the_sms_code(page, stack):
    customer = user(stack, "demo")
    seen = len(sms_codes(stack, customer))
    page.goto("/login")
    screenshot(page, "login")
    page.get_by_label("Username").fill(customer["username"])
    page.get_by_label("Password").fill(customer["password"])
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    timer = page.get_by_role("timer")
    expect(timer).to_have_text(re.compile(r"^[45]:\d\d$"))
    first = timer.inner_text()
    expect(timer).not_to_have_text(first)  # it counts down, second by second
    code = latest_sms_code(stack, customer, after=seen)

    page.get_by_label("Code").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".field-error")).to_be_visible()
    screenshot(page, "login-2fa-wrong-code")

    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()
    assert session_cookie(page), "the session is in the cookie"
    assert page.evaluate("Object.keys(localStorage).length") == 0, "nothing is kept in localStorage"


def test_the_fallbacks_another_sms_provider_and_a_voice_call_in_a_chosen_language(page, stack):
    customer = user(stack, "demo")
    page.goto("/login")
    page.get_by_label("Username").fill(customer["username"])
    page.get_by_label("Password").fill(customer["password"])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

    first_sms = wait_for(lambda: requests.get(f"{stack['sms_inbox']}/messages", params={"to": customer["phone"]},
                                              timeout=5).json(), message="the first SMS")[-1]
    page.get_by_role("button", name="Send SMS via another provider").click()
    expect(page.get_by_role("status").filter(has_text="A new code is on its way")).to_be_visible()
    latest = wait_for(lambda: [m for m in requests.get(f"{stack['sms_inbox']}/messages", params={"to": customer["phone"]},
                                                       timeout=5).json() if m["at"] > first_sms["at"]],
                      message="the SMS of the other provider")[-1]
    assert latest["provider"] != first_sms["provider"]

    language = page.get_by_label("Dictation language")
    assert language.input_value() == "en", "English is preselected"
    options = language.locator("option").all_inner_texts()
    assert len(options) > 1
    language.select_option(index=1)
    chosen = language.input_value()
    page.get_by_role("button", name="Voice call with 2FA code").click()
    expect(page.get_by_role("status").filter(has_text="We are calling you")).to_be_visible()
    call = wait_for(lambda: requests.get(f"{stack['voice_inbox']}/messages", params={"to": customer["phone"]},
                                         timeout=5).json(), message="the voice call")[-1]
    assert call["language"] == chosen
    screenshot(page, "login-2fa-fallbacks")

    page.get_by_role("button", name="Use a recovery code instead").click()
    expect(page.get_by_label("Recovery code")).to_be_visible()
    page.get_by_label("Recovery code").fill("not-a-recovery-code")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".field-error")).to_be_visible()


def test_password_recovery_from_the_login_page_through_the_mailed_link(page, stack):
    customer = user(stack, "other")
    mail = f"{stack['mail_inbox']}/messages"
    before = len(requests.get(mail, timeout=5).json())
    page.goto("/login")
    page.get_by_role("button", name="Forgot your password?").click()
    page.get_by_label("Username").fill(customer["username"])
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_text("If the account exists, a reset link is on its way")).to_be_visible()

    letters = wait_for(lambda: requests.get(mail, timeout=5).json()[before:] or None, message="the reset e-mail")
    link = re.search(r"https?://\S+/reset-password\?token=\S+", letters[-1]["text"]).group(0)
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    new_password = "a-new-and-long-password-2"
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_text("Your password was changed")).to_be_visible()
    customer["password"] = new_password  # the other tests log in with the new one

    page.get_by_role("link", name="Back to log in").click()
    log_in(page, stack, "other")
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()


def test_logout_and_sign_out_everywhere_end_the_session_server_side(browser, page, stack):
    log_in(page, stack, "demo")
    token = session_cookie(page)
    api = f"{stack['gateway']}/api/v1"
    assert requests.get(f"{api}/auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    page.get_by_role("button", name=re.compile("Account menu for demo")).click()
    screenshot(page, "account-menu")
    page.get_by_role("menuitem", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to your panel")).to_be_visible()
    # A logout the customer asked for is not "your session ended", and by the time the
    # login screen shows, the gateway has answered and cleared the cookie.
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("Your session ended")).to_have_count(0)
    assert session_cookie(page) is None, "the cookie is gone"
    assert requests.get(f"{api}/auth/session", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401

    # Sign out everywhere: a second browser's session ends too, and its open page notices.
    log_in(page, stack, "demo")
    second = browser.new_context(base_url=stack["gateway"])
    try:
        elsewhere = second.new_page()
        log_in(elsewhere, stack, "demo")
        page.get_by_role("button", name=re.compile("Account menu for demo")).click()
        page.get_by_role("menuitem", name="Sign out everywhere").click()
        expect(page.get_by_role("heading", name="Log in to your panel")).to_be_visible()
        expect(elsewhere.get_by_role("heading", name="Log in to your panel")).to_be_visible(timeout=30_000)
        expect(elsewhere.get_by_text("Your session ended")).to_be_visible()
    finally:
        second.close()


def test_throttled_logins_show_the_wait_and_hold_the_button(page, stack):
    page.goto("/login")
    page.get_by_label("Username").fill("nobody-in-the-browser")
    page.get_by_label("Password").fill("guess")
    button = page.get_by_role("button", name="Log in")
    waiting = page.get_by_role("status").filter(has_text=re.compile(r"Try again in \d+ (second|minute)"))
    for _ in range(10):  # a few failures are free, then each one waits (R-AUTH throttling)
        expect(button).to_be_enabled()
        button.click()
        expect(page.get_by_role("alert").or_(waiting).first).to_be_visible()
        if waiting.count():
            break
        expect(button).to_be_enabled()
    expect(waiting).to_be_visible()
    expect(button).to_be_disabled()
    screenshot(page, "login-throttled")
