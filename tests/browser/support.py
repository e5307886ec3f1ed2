"""Helpers of the browser suite: what a test needs besides the page itself — the 2FA codes
in the SMS stand-in's inbox, screenshots, an accessibility check with axe-core, the
support staff's tool, and paying a checkout at the payments sandbox — all through the
stack's real interfaces (HTTP, the staff CLI over AMQP)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from common.config import REPO_ROOT
from gateway.routes.panel import DEFAULT_DIST_DIR
from tests.support import wait_for

AXE_SCRIPT = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOT_DIR = REPO_ROOT / "var" / "screenshots"
SMS_CODE = re.compile(r"\b(\d{6})\b")


def panel_dist_dir():
    """Where the stack's gateway serves the panel from (``PANEL_DIST_DIR``, else web/dist)."""
    return Path(os.environ.get("PANEL_DIST_DIR") or DEFAULT_DIST_DIR)


def phone_of(stack, phone_or_user):
    """A phone number from a number, a user of ``stack["users"]`` or a demo username."""
    if isinstance(phone_or_user, dict):
        return phone_or_user["phone"]
    if phone_or_user.startswith("+"):
        return phone_or_user
    return next(user["phone"] for user in stack["users"] if user["username"] == phone_or_user)


def sms_codes(stack, phone_or_user):
    """The codes the SMS stand-in delivered to that phone, oldest first."""
    answer = requests.get(f"{stack['sms_inbox']}/messages", params={"to": phone_of(stack, phone_or_user)}, timeout=5)
    answer.raise_for_status()
    return [match.group(1) for match in map(SMS_CODE.search, (m["text"] for m in answer.json())) if match]


def latest_sms_code(stack, phone_or_user, after=0, timeout=15):
    """The newest code sent to that phone once more than ``after`` codes arrived (take
    ``len(sms_codes(...))`` before the action that sends one)."""
    def more():
        codes = sms_codes(stack, phone_or_user)
        return codes if len(codes) > after else None

    return wait_for(more, timeout=timeout, message=f"an SMS code for {phone_or_user}")[-1]


def screenshot(page, name):
    """Save the whole page as var/screenshots/<name>.png; returns the path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page, impacts=("serious", "critical")):
    """The axe-core violations of the current page with one of ``impacts``.

    axe runs through ``page.evaluate`` (the DevTools protocol), which the panel's CSP does
    not govern: a script tag with axe's source inline would be refused by
    ``script-src 'self'``, as it should be."""
    source = AXE_SCRIPT.read_text(encoding="utf-8")
    results = page.evaluate(source + "\n;axe.run(document, {resultTypes: ['violations']})")
    return [violation for violation in results["violations"] if violation["impact"] in impacts]


def describe_violations(violations):
    """One line per violation and offending node, for an assertion message."""
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — {node['target']}"
                     for v in violations for node in v["nodes"])


def staff(stack, *args):
    """Run the support staff's tool against the stack (``python -m services.support.staff
    --json ARGS``, over the stack's AMQP_URI) and return its JSON answer."""
    result = subprocess.run([sys.executable, "-m", "services.support.staff", "--json", *args], cwd=REPO_ROOT,
                            env=dict(stack["env"]), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"staff {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
    return json.loads(result.stdout)


def pay_checkout(stack, checkout, outcome="succeeded"):
    """Pay (or fail) a payment at the sandbox's checkout page, as its buttons do, without
    a browser. ``checkout``: a top-up's ``redirect_url`` or its ``provider_payment_id``.
    Returns where the sandbox sends the payer back (its ``Location``), or None."""
    url = checkout if "/checkout/" in checkout else f"{stack['payments_sandbox']}/checkout/{checkout}"
    answer = requests.post(url, data={"outcome": outcome}, allow_redirects=False, timeout=10)
    assert answer.status_code in (200, 303), f"checkout {url}: {answer.status_code} {answer.text}"
    return answer.headers.get("Location")
