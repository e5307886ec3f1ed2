"""Service management in the browser (R-SRV-1..6, R-ASYNC, R-LOG-1..3): the list with its
filters, search, export and paging; a server's control panel with the tag, power actions
behind confirmations, and the two pop-ups of a reboot; the bell's action log."""

import csv
import io
import re

import requests
from playwright.sync_api import expect

from tests.browser.panel import log_in, session_cookie
from tests.browser.support import axe_violations, describe_violations, screenshot


def api_servers(page, stack, **query):
    token = session_cookie(page)
    answer = requests.get(f"{stack['gateway']}/api/v1/servers", params={"per_page": 500, **query},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return answer.json()["items"]


NO_UNREAD = re.compile(r"^Action log \(\s*0 unread\)$")


def wait_for_start_and_result(page, action):
    """The pop-up of an operation starting, then the one of its result (each stays a few
    seconds, so they are watched for one after the other)."""
    started = page.locator(".toast").filter(has_text="Started.").filter(has_text=re.compile(action, re.I))
    expect(started.first).to_be_visible(timeout=30_000)
    title = started.first.locator(".toast-title").inner_text()
    expect(page.locator(".toast-success, .toast-error").filter(has_text=title).first).to_be_visible(timeout=60_000)
    return title


def rows(page):
    return page.locator("table.servers-table tbody tr")


def test_the_list_filters_searches_and_exports_what_the_filters_select(page, stack):
    log_in(page, stack, "demo")
    everything = api_servers(page, stack)
    expect(rows(page)).to_have_count(len(everything))
    screenshot(page, "servers")
    assert not axe_violations(page), describe_violations(axe_violations(page))

    page.get_by_label("Location").select_option("NL")
    in_nl = [s for s in everything if s["location"] == "NL"]
    expect(rows(page)).to_have_count(len(in_nl))
    expect(page).to_have_url(re.compile(r"location=NL"))
    for number in (s["number"] for s in in_nl):
        expect(page.get_by_role("link", name=number, exact=True)).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Export").click()
    exported = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert sorted(row["number"] for row in exported) == sorted(s["number"] for s in in_nl)

    page.get_by_label("Location").select_option("")
    page.get_by_label("Status").select_option("active")
    expect(rows(page)).to_have_count(len([s for s in everything if s["status"] == "active"]))
    page.get_by_label("Status").select_option("")

    tagged = next(s for s in everything if s["tag"])
    page.get_by_label("Search").fill(tagged["tag"])
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text(tagged["number"])
    page.get_by_label("Search").fill(tagged["ip"])
    expect(rows(page)).to_have_count(1)
    page.get_by_label("Search").fill("no-such-server-anywhere")
    expect(page.get_by_text("No server matches these filters.")).to_be_visible()

    page.reload()  # the filters live in the address
    expect(page.get_by_label("Search")).to_have_value("no-such-server-anywhere")


def test_the_control_panel_tag_reboot_with_its_two_popups_and_typed_confirmations(page, stack):
    log_in(page, stack, "demo")
    server = next(s for s in api_servers(page, stack) if s["status"] == "active")
    page.get_by_role("link", name=server["number"], exact=True).click()
    expect(page.get_by_role("heading", name=f"Server {server['number']}")).to_be_visible()
    if server["ip"]:
        expect(page.locator(".ip-list")).to_contain_text(server["ip"])

    page.get_by_label("Tag").fill("browser-tag")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".toast").filter(has_text="Tag saved.")).to_be_visible()
    assert any(s["tag"] == "browser-tag" for s in api_servers(page, stack, q="browser-tag"))

    page.get_by_role("button", name="Reboot").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Reboot server {server['number']}?")
    screenshot(page, "server-reboot-confirm")
    dialog.get_by_role("button", name="Reboot").click()
    expect(page.get_by_text("Request sent.")).to_be_visible()
    # Two pop-ups pushed over the stream: one as the reboot starts, one with its result.
    wait_for_start_and_result(page, "reboot")
    screenshot(page, "server-reboot-popups")
    expect(page.locator(".operations")).to_contain_text(re.compile("reboot", re.I))

    page.get_by_role("button", name="Reinstall").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Operating system to install")).to_be_visible()
    confirm = dialog.get_by_role("button", name="Reinstall")
    dialog.get_by_label(re.compile("Type the server number")).fill("wrong")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(re.compile("Type the server number")).fill(server["number"])
    expect(confirm).to_be_enabled()
    screenshot(page, "server-reinstall-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    screenshot(page, "server-detail")
    assert not axe_violations(page), describe_violations(axe_violations(page))


def test_the_bell_shows_the_action_log_marks_read_and_hides(page, stack):
    log_in(page, stack, "demo")
    server = api_servers(page, stack)[0]
    page.goto(f"/servers/{server['id']}")
    expect(page.get_by_role("heading", name=f"Server {server['number']}")).to_be_visible()
    page.get_by_role("button", name="Power on").click()
    wait_for_start_and_result(page, "power")
    bell = page.get_by_role("button", name=re.compile(r"^Action log"))
    expect(bell).not_to_have_accessible_name(NO_UNREAD)
    bell.click()
    log = page.get_by_role("region", name="Action log")
    expect(log).to_be_visible()
    expect(log.locator(".bell-item").first).to_be_visible()
    screenshot(page, "bell-open")
    log.get_by_role("button", name="All", exact=True).click()
    expect(log.get_by_role("button", name="All", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(log.locator(".bell-item").first).to_be_visible()
    log.get_by_role("button", name="This session").click()
    expect(log.locator(".bell-item.unread").first).to_be_visible()
    log.get_by_role("button", name="Mark all as read").click()
    expect(bell).to_have_accessible_name(NO_UNREAD)
    expect(log.locator(".bell-item.unread")).to_have_count(0)
    bell.click()
    expect(page.get_by_role("region", name="Action log")).to_have_count(0)
