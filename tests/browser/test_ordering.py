"""Ordering in the browser: instant servers (R-INST, four category tabs) and stock servers
(R-STOCK, seven groups, one-business-day ETA); an order's progress stays visible until
the server is delivered and in the list."""

import re

from playwright.sync_api import expect

from tests.browser.panel import log_in
from tests.browser.support import axe_violations, describe_violations, screenshot


def test_instant_servers_by_category_and_an_order_followed_until_the_server_is_there(page, stack):
    log_in(page, stack, "demo")
    page.get_by_role("link", name="Instant servers").click()
    tabs = page.get_by_role("tablist").get_by_role("tab")
    expect(tabs).to_have_text(["All", "GPU", "VPS", "Dedicated"])
    cards = page.locator("article.offer")
    expect(cards.first).to_be_visible()
    everything = cards.count()
    page.get_by_role("tab", name="GPU").click()
    expect(page.get_by_role("tab", name="GPU")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile(r"category=gpu"))
    # The GPU offers replace the whole list (which stays on screen until they arrive).
    expect(cards).not_to_have_count(everything)
    expect(cards.first).to_be_visible()
    assert cards.count() < everything
    for card in cards.all():
        expect(card).to_contain_text(re.compile(r"NVIDIA|GPU|vGPU", re.I))
    page.get_by_role("tab", name="All").click()
    expect(cards).to_have_count(everything)
    screenshot(page, "instant")
    assert not axe_violations(page), describe_violations(axe_violations(page))

    balance_before = page.locator(".balance-chip strong").inner_text()
    offer = cards.filter(has=page.get_by_role("button", name=re.compile("^Order"), disabled=False)).first
    name = offer.get_by_role("heading").inner_text()
    offer.get_by_role("button", name=re.compile("^Order")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Operating system")).to_be_visible()
    dialog.get_by_label("Tag (optional)").fill("ordered-in-browser")
    screenshot(page, "instant-order-dialog")
    dialog.get_by_role("button", name=re.compile("^Order for")).click()

    progress = page.locator("ul.orders li").filter(has_text="ordered-in-browser")
    expect(progress).to_be_visible()
    expect(progress).to_contain_text(name)
    screenshot(page, "instant-order-progress")
    expect(progress).to_contain_text("Completed", timeout=90_000)
    expect(page.locator(".balance-chip strong")).not_to_have_text(balance_before)
    progress.get_by_role("link", name="Open server").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Server "))).to_be_visible()
    expect(page.get_by_label("Tag")).to_have_value("ordered-in-browser")
    page.get_by_role("link", name="Servers").first.click()
    page.get_by_label("Search").fill("ordered-in-browser")
    expect(page.locator("table.servers-table tbody tr")).to_have_count(1)


def test_stock_servers_in_seven_groups_with_their_delivery_date(page, stack):
    log_in(page, stack, "demo")
    page.get_by_role("link", name="Stock servers").click()
    expect(page.get_by_role("tablist").get_by_role("tab")).to_have_text(
        ["All", "1 CPU", "2 CPU", "AMD Ryzen", "AMD legacy", "Intel", "GPU"])
    cards = page.locator("article.offer")
    expect(cards.first).to_be_visible()
    expect(cards.first).to_contain_text("Delivered by")
    screenshot(page, "stock")
    page.get_by_role("tab", name="2 CPU").click()
    expect(page).to_have_url(re.compile(r"category=2cpu"))
    page.get_by_role("tab", name="All").click()
    offer = cards.filter(has=page.get_by_role("button", name=re.compile("^Order"), disabled=False)).first
    offer.get_by_role("button", name=re.compile("^Order")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Tag (optional)").fill("stock-in-browser")
    dialog.get_by_role("button", name=re.compile("^Order for")).click()
    progress = page.locator("ul.orders li").filter(has_text="stock-in-browser")
    expect(progress).to_be_visible()
    expect(progress).to_contain_text(re.compile("Paid, setting up|Placed|Delivered by"))
    screenshot(page, "stock-order-progress")
    # The demo clock turns a business day into seconds: the order is followed to its server,
    # so no delivery lands later in another test's fleet.
    expect(progress).to_contain_text("Completed", timeout=120_000)
    progress.get_by_role("link", name="Open server").click()
    expect(page.get_by_label("Tag")).to_have_value("stock-in-browser")
