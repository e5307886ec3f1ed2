"""The panel as a whole: a page of another origin cannot act with the customer's cookie,
the phone layout works, and what the closing note reports is measured: the time to the
first screen and the bundle size (printed, not asserted)."""

import gzip
import json
import re

from playwright.sync_api import expect

from tests.browser.panel import log_in, session_cookie, user
from tests.browser.support import SCREENSHOT_DIR, axe_violations, describe_violations, panel_dist_dir, screenshot


def test_a_foreign_page_cannot_post_with_the_customers_cookie(browser, page, stack):
    log_in(page, stack, "demo")
    api = f"{stack['gateway']}/api/v1"
    # The SMS stand-in is another origin on the same host (so SameSite does not stop the
    # cookie): a page there tries to log the customer out and to reboot a server.
    foreign = page.context.new_page()
    foreign.goto(f"{stack['sms_inbox']}/messages")
    statuses = foreign.evaluate("""async (api) => {
        const logout = await fetch(api + '/auth/logout', {method: 'POST', credentials: 'include', mode: 'no-cors'});
        const form = await fetch(api + '/notifications/read', {method: 'POST', credentials: 'include',
            headers: {'Content-Type': 'text/plain'}, body: '{"all": true}'}).catch(() => null);
        return [logout.type, form && form.status];
    }""", api)
    assert statuses[0] == "opaque"
    foreign.close()
    # The session survived: the panel still works with it.
    page.reload()
    expect(page.get_by_role("button", name=re.compile("Account menu for demo"))).to_be_visible()
    answer = page.request.get(f"{api}/auth/session")
    assert answer.status == 200
    # And the gateway itself says why, to a cross-site request that carries the cookie.
    refused = page.request.post(f"{api}/auth/logout", headers={"Origin": "http://evil.example"})
    assert refused.status == 403 and refused.json()["error"]["code"] == "forbidden"
    assert page.request.get(f"{api}/auth/session").status == 200
    assert session_cookie(page)


def test_the_phone_layout_folds_the_menu_and_shows_servers_as_cards(phone, stack):
    log_in(phone, stack, "demo")
    cards = phone.locator("table.servers-table tbody tr")
    expect(cards.first).to_be_visible()
    assert cards.first.evaluate("row => getComputedStyle(row).display") == "block", "rows become cards"
    screenshot(phone, "phone-servers")
    expect(phone.get_by_role("navigation", name="Main")).to_be_hidden()
    phone.get_by_role("button", name="Menu", exact=True).click()
    expect(phone.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(phone, "phone-menu")
    phone.get_by_role("link", name="Billing").click()
    expect(phone.get_by_role("heading", name="Billing")).to_be_visible()
    expect(phone.get_by_role("navigation", name="Main")).to_be_hidden()
    assert phone.evaluate("document.documentElement.scrollWidth <= innerWidth"), "nothing wider than the phone"
    screenshot(phone, "phone-billing")
    assert not axe_violations(phone), describe_violations(axe_violations(phone))


def test_measure_time_to_first_screen_and_bundle_size(page, stack):
    """Printed for the closing note and written to var/screenshots/metrics.json."""
    customer = user(stack, "other")
    log_in(page, stack, "other")
    page.goto("/servers")
    page.get_by_role("heading", name="Servers").wait_for()
    timings = []
    for _ in range(5):
        page.reload()
        page.locator("table.servers-table, .empty").first.wait_for()
        timings.append(page.evaluate("performance.now()"))
    assets = list((panel_dist_dir() / "assets").iterdir())
    sizes = {path.name: (path.stat().st_size, len(gzip.compress(path.read_bytes(), 9))) for path in assets
             if path.suffix in (".js", ".css")}
    index = (panel_dist_dir() / "index.html").read_text(encoding="utf-8")
    first = {name: size for name, size in sizes.items() if name in index}  # loaded by the first screen
    metrics = {
        "first_screen_gzip_bytes": sum(packed for _, packed in first.values()),
        "first_screen_ms": sorted(timings),
        "first_screen_median_ms": sorted(timings)[len(timings) // 2],
        "bundle_bytes": sum(raw for raw, _ in sizes.values()),
        "bundle_gzip_bytes": sum(packed for _, packed in sizes.values()),
        "files": sizes,
        "customer": customer["username"],
    }
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    (SCREENSHOT_DIR / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"\nfirst screen (reload → server list drawn): median {metrics['first_screen_median_ms']:.0f} ms "
          f"of {[round(t) for t in timings]}; bundle {metrics['bundle_bytes'] / 1000:.1f} kB, "
          f"gzip {metrics['bundle_gzip_bytes'] / 1000:.1f} kB in all, "
          f"{metrics['first_screen_gzip_bytes'] / 1000:.1f} kB for the first screen (charts load later)")
    assert metrics["bundle_gzip_bytes"] > 0
