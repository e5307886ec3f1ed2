"""The browser suite's own machinery against the running stack, independent of what the
panel draws: every screen's address serves the panel under its CSP to a real Chromium,
the CSP refuses injected inline script (and the suite notices), axe-core runs despite the
CSP, and the helpers reach the stack's SMS inbox, staff tool and payments sandbox."""

import pytest
import requests

from tests.browser.conftest import DESKTOP, PageProblems
from tests.browser.support import (
    axe_violations,
    latest_sms_code,
    pay_checkout,
    screenshot,
    sms_codes,
    staff,
)
from tests.support import wait_for

SCREENS = ["/", "/login", "/servers", "/servers/123", "/instant", "/stock", "/storage", "/storage/1", "/billing",
           "/support", "/support/1", "/reset-password"]


@pytest.mark.parametrize("path", SCREENS)
def test_every_screen_address_serves_the_panel_under_its_csp(page, path):
    answer = page.goto(path, wait_until="load")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.evaluate("document.scripts.length") >= 1


def test_the_panel_csp_refuses_injected_inline_script_and_the_suite_notices(browser, stack):
    context = browser.new_context(base_url=stack["gateway"], **DESKTOP)
    try:
        page = context.new_page()
        problems = PageProblems(page)
        page.goto("/", wait_until="load")
        page.evaluate("""() => {
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.head.append(script);
        }""")
        reported = wait_for(problems.fatal, message="the CSP violation on the console")
        assert "Content Security Policy" in reported[0]
        assert page.evaluate("window.injected === undefined")
    finally:
        context.close()


def test_axe_runs_on_the_panel_despite_its_csp(page):
    page.goto("/", wait_until="load")
    every = axe_violations(page, impacts=("minor", "moderate", "serious", "critical"))
    assert isinstance(every, list)
    assert page.evaluate("typeof axe.run") == "function"


def test_a_phone_page_is_a_touch_screen_and_screenshots_land_in_var(phone):
    phone.goto("/login", wait_until="load")
    assert phone.evaluate("[innerWidth, navigator.maxTouchPoints > 0]") == [390, True]
    path = screenshot(phone, "harness-phone-login")
    assert path.is_file() and path.stat().st_size > 0


def test_the_sms_code_of_a_login_is_read_from_the_stand_in(stack):
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][0]
    seen = len(sms_codes(stack, customer))
    challenge = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                          "password": customer["password"]}, timeout=10).json()
    assert challenge["status"] == "2fa_required"
    code = latest_sms_code(stack, customer["username"], after=seen)
    verified = requests.post(f"{api}/auth/2fa/verify", json={"challenge_id": challenge["challenge_id"], "code": code},
                             timeout=10)
    assert verified.status_code == 200, verified.text


def test_the_staff_tool_and_the_sandbox_checkout_reach_the_stack(stack):
    api = f"{stack['gateway']}/api/v1"
    customer = stack["users"][1]
    token = requests.post(f"{api}/auth/login", json={"username": customer["username"],
                                                     "password": customer["password"]}, timeout=10).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert "items" in staff(stack, "list", "--status", "all")
    answer = requests.post(f"{api}/billing/topups", json={"amount": "20.00", "method": "stripe"}, headers=bearer,
                           timeout=15)
    assert answer.status_code == 201, answer.text
    topup = answer.json()
    pay_checkout(stack, topup["redirect_url"])
    wait_for(lambda: requests.get(f"{api}/billing/topups/{topup['id']}", headers=bearer,
                                  timeout=10).json()["status"] == "succeeded", timeout=30, message="credited")
