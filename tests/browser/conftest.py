"""Fixtures of the browser suite: the whole stack serving the built panel (one for the
session), one headless Chromium (Debian's, driven by Playwright; never a browser of
Playwright's own) and a fresh browser context per test, as a desktop (``page``) or a phone
(``phone``). A test fails at teardown when its page threw an uncaught error or the browser
reported a Content-Security-Policy violation."""

import shutil

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.support import panel_dist_dir
from tests.stack import running_stack

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The dev stack, its gateway serving the panel's build (``PANEL_DIST_DIR`` or web/dist)."""
    index = panel_dist_dir() / "index.html"
    if not index.is_file():
        pytest.fail(f"the panel is not built ({index} is missing): run make setup", pytrace=False)
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-browser") as info:
        yield info


@pytest.fixture(scope="session")
def browser():
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                          headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    # Not playwright.stop(): under eventlet (tests/conftest.py) it never returns. eventlet's
    # hub adopts every greenlet that waits in it, Playwright's dispatcher greenlet among
    # them, so when the driver connection ends that greenlet returns to the hub instead of
    # to stop(). The driver process ends by itself when this process does (its stdin closes).


class PageProblems:
    """Uncaught page errors and console errors of one page, as they happen."""

    def __init__(self, page):
        self.page_errors = []
        self.console_errors = []
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))

    def fatal(self):
        """What fails the test: every page error, and console errors about the CSP."""
        csp = [text for text in self.console_errors if "Content Security Policy" in text]
        return [f"page error: {text}" for text in self.page_errors] + [f"console: {text}" for text in csp]


def open_page(browser, stack, options):
    context = browser.new_context(base_url=stack["gateway"], **options)
    page = context.new_page()
    problems = PageProblems(page)
    yield page
    context.close()
    fatal = problems.fatal()
    if fatal:
        pytest.fail("the page reported errors:\n" + "\n".join(fatal), pytrace=False)


@pytest.fixture
def page(browser, stack):
    """A page in a fresh context at desktop size (1280×800), relative URLs on the gateway."""
    yield from open_page(browser, stack, DESKTOP)


@pytest.fixture
def phone(browser, stack):
    """A page in a fresh context as a phone (390×844, mobile, touch)."""
    yield from open_page(browser, stack, PHONE)
