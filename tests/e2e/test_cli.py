"""hostctl, the command-line client, against the whole running stack (issue 19): every
command run as a customer runs it — the installed console script in a subprocess, with its
own config directory — and checked by what it prints, what it exits with, and what the
API then says. Nothing is mocked: the stack is ``make run``'s."""

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.stack import running_stack
from tests.support import wait_for
from tests.webhook_receiver import Receiver

SCRIPT = Path(sys.executable).with_name("hostctl")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("var"), vhost_prefix="panel-cli") as info:
        yield info


def command():
    """The installed console script (``make setup`` installs it); ``python -m hostctl``
    runs the same entry point where the set-up has not been re-run yet."""
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "hostctl"]


class Terminal:
    """A customer's shell: its own config directory, the stack's API address."""

    def __init__(self, stack, home):
        self.stack = stack
        self.env = dict(os.environ, HOSTCTL_CONFIG_DIR=str(home), HOSTCTL_API=stack["gateway"],
                        COLUMNS="200", NO_COLOR="1", PYTHONWARNINGS="ignore")
        self.env.pop("HOSTCTL_TOKEN", None)
        self.home = home

    def run(self, *args, token=None, stdin=None, check=True, timeout=120):
        env = dict(self.env, **({"HOSTCTL_TOKEN": token} if token else {}))
        result = subprocess.run([*command(), *args], env=env, input=stdin, capture_output=True, text=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, f"hostctl {' '.join(args)} → {result.returncode}\n{result.stdout}{result.stderr}"
        return result

    def json(self, *args, **kwargs):
        return json.loads(self.run(*args, "--output", "json", **kwargs).stdout)

    def popen(self, *args, token=None):
        env = dict(self.env, **({"HOSTCTL_TOKEN": token} if token else {}))
        return subprocess.Popen([*command(), *args], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def sms_codes(stack, kind="sms"):
    """The codes in the SMS (or voice) stand-in's inbox, oldest first; a call dictates the
    digits one by one ("1, 2, 3, …")."""
    inbox = stack[f"{kind}_inbox"]
    return ["".join(re.findall(r"\d", message["text"]))[:6]
            for message in requests.get(f"{inbox}/messages", timeout=5).json()]


@pytest.fixture(scope="module")
def shell(stack, tmp_path_factory):
    """A terminal logged in as the customer without 2FA, through `hostctl login`."""
    terminal = Terminal(stack, tmp_path_factory.mktemp("home"))
    customer = stack["users"][1]
    result = terminal.run("login", "--username", customer["username"], "--password-stdin",
                          stdin=customer["password"] + "\n")
    assert f"Logged in as {customer['username']}" in result.stderr
    return terminal


@pytest.fixture(scope="module")
def servers(shell):
    return shell.json("servers", "list")["items"]


def test_login_stores_a_token_readable_by_its_owner_only(shell, stack):
    config_file = shell.home / "config.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    stored = json.loads(config_file.read_text())
    assert stored["token"].startswith("hpat_") and stored["api"] == stack["gateway"]
    whoami = shell.json("whoami")
    assert whoami["user"]["username"] == stack["users"][1]["username"] and whoami["via"] == "api_token"
    assert "tokens:write" in whoami["token"]["scopes"] and "storage:secrets" in whoami["token"]["scopes"]
    # the password session it logged in with is over: only the token is left
    listed = shell.json("tokens", "list")["items"]
    assert [token["id"] for token in listed] == [stored["token_id"]]


def test_login_with_two_factor_offers_another_provider_and_a_voice_call(stack, tmp_path):
    terminal = Terminal(stack, tmp_path / "home")
    customer = stack["users"][0]
    sent_before = len(sms_codes(stack))
    voice_before = len(sms_codes(stack, "voice"))
    login = terminal.popen("login", "--username", customer["username"], "--password-stdin")
    login.stdin.write(customer["password"] + "\n")
    login.stdin.flush()
    wait_for(lambda: len(sms_codes(stack)) > sent_before, timeout=30, message="the first SMS")
    login.stdin.write("s\n")  # send it by the other SMS provider
    login.stdin.flush()
    wait_for(lambda: len(sms_codes(stack)) > sent_before + 1, timeout=30, message="the SMS by the other provider")
    login.stdin.write("v\nde\n")  # and then a voice call in German
    login.stdin.flush()
    wait_for(lambda: len(sms_codes(stack, "voice")) > voice_before, timeout=30, message="the voice call")
    calls = requests.get(f"{stack['voice_inbox']}/messages", timeout=5).json()
    assert calls[-1].get("language") == "de", calls[-1]
    login.stdin.write("000000\n")  # a wrong code is said so, and asked again
    login.stdin.flush()
    login.stdin.write(sms_codes(stack, "voice")[-1] + "\n")
    login.stdin.flush()
    out, err = login.communicate(timeout=60)
    assert login.returncode == 0, out + err
    assert "another SMS provider" in err and "Calling you" in err and "wrong" in err.lower()
    assert terminal.json("whoami")["user"]["username"] == customer["username"]


def test_servers_list_filters_searches_and_prints_table_json_and_csv(shell, servers):
    assert len(servers) == 2
    table = shell.run("servers", "list").stdout
    for server in servers:
        assert server["number"] in table
    nl = shell.json("servers", "list", "--location", "nl")["items"]
    assert [server["location"] for server in nl] == ["NL"]
    found = shell.json("servers", "list", "--search", servers[0]["number"])["items"]
    assert [server["id"] for server in found] == [servers[0]["id"]]
    rows = list(csv.DictReader(io.StringIO(shell.run("servers", "list", "--output", "csv").stdout)))
    assert sorted(row["Number"] for row in rows) == sorted(server["number"] for server in servers)
    overdue = shell.json("servers", "list", "--status", "overdue")
    assert all(server["status"] == "overdue" for server in overdue["items"])
    bad = shell.run("servers", "list", "--status", "sleeping", check=False)
    assert bad.returncode == 2 and "sleeping" in bad.stderr


def test_export_streams_every_matching_server_to_a_file(shell, servers, tmp_path):
    target = tmp_path / "servers.csv"
    result = shell.run("servers", "export", "--format", "csv", "-o", str(target))
    assert f"Wrote {len(servers)} servers" in result.stderr
    exported = list(csv.DictReader(target.open()))
    assert sorted(row["number"] for row in exported) == sorted(server["number"] for server in servers)
    only_us = tmp_path / "us.json"
    shell.run("servers", "export", "--format", "json", "--location", "US", "-o", str(only_us))
    assert {row["location"] for row in json.loads(only_us.read_text())} == {"US"}


def test_show_and_tag_take_the_server_number(shell, servers):
    number = servers[0]["number"]
    shown = shell.json("servers", "show", number)
    assert shown["id"] == servers[0]["id"] and shown["ips"]
    assert number in shell.run("servers", "show", servers[0]["id"]).stdout
    assert "tagged “cli-web”" in shell.run("servers", "tag", number, "cli-web").stderr
    assert shell.json("servers", "show", number)["tag"] == "cli-web"
    shell.run("servers", "tag", number, "--clear")
    assert shell.json("servers", "show", number)["tag"] is None
    missing = shell.run("servers", "show", "SRV-99999999", check=False)
    assert missing.returncode == 1 and "no server SRV-99999999" in missing.stderr


def test_reboot_wait_follows_the_operation_and_exits_with_its_result(shell, servers):
    number = servers[0]["number"]
    result = shell.run("servers", "reboot", number, "--wait")
    assert re.search(rf"✓ Reboot {number}", result.stderr), result.stderr
    operation = shell.json("servers", "power-on", number, "--wait")
    assert operation["status"] == "succeeded" and operation["kind"] == "server.power_on"
    log = shell.json("notifications")
    assert any(item["title"] == f"Reboot {number}" and item["level"] == "success" for item in log["items"])


def test_a_token_without_the_scope_is_refused_with_the_apis_message_and_request_id(shell, servers):
    secret = shell.run("tokens", "create", "--name", "read only", "--scope", "servers:read").stdout.strip()
    assert secret.startswith("hpat_")
    assert shell.json("servers", "list", token=secret)["total"] == 2
    refused = shell.run("servers", "reboot", servers[0]["number"], token=secret, check=False)
    assert refused.returncode == 1
    assert "lacks the scope servers:write" in refused.stderr and "HTTP 403" in refused.stderr
    assert re.search(r"request id \S+", refused.stderr)


def test_tokens_are_listed_revoked_and_then_refused(shell):
    created = shell.json("tokens", "create", "--name", "cron", "--scope", "read", "--expires-in-days", "7",
                         "--allow-ip", "127.0.0.0/8")
    assert created["allowed_ips"] == ["127.0.0.0/8"] and created["expires_at"]
    assert shell.run("whoami", token=created["token"]).returncode == 0
    listed = shell.json("tokens", "list")["items"]
    assert created["id"] in [token["id"] for token in listed]
    table = shell.run("tokens", "list").stdout
    assert "cron" in table and f"…{created['hint']}" in table
    shell.run("tokens", "revoke", created["id"])
    dead = shell.run("whoami", token=created["token"], check=False)
    assert dead.returncode == 1 and "revoked" in dead.stderr
    scopes = shell.json("tokens", "scopes")
    assert {"name": "servers:write", "description": "read and change servers"} in scopes


def test_catalog_and_an_instant_order_followed_until_the_server_is_there(shell):
    gpu = shell.json("catalog", "instant", "--category", "gpu")["items"]
    assert gpu and all("gpu" in offer["categories"] for offer in gpu)
    stock = shell.json("catalog", "stock")["items"]
    assert stock and all(offer["deploy_eta"] for offer in stock)
    offers = shell.json("catalog", "instant", "--location", "NL")["items"]
    cheapest = min((offer for offer in offers if offer["available"]), key=lambda offer: float(offer["price_month"]))
    top_up_at_the_sandbox(shell, "50.00")
    before = shell.json("servers", "list")["total"]
    result = shell.run("order", cheapest["id"], "--location", "NL", "--os", "debian-12", "--tag", "cli-order",
                       "--wait", timeout=240)
    assert "✓" in result.stderr and "Your server: SRV-" in result.stderr, result.stderr
    assert shell.json("servers", "list")["total"] == before + 1
    assert any(order["status"] == "completed" for order in shell.json("orders"))


def top_up_at_the_sandbox(shell, amount):
    """Top up with hostctl, pay at the payment sandbox, and wait for the balance."""
    before = float(shell.json("billing", "account")["balance"])
    topup = shell.json("billing", "topup", "--amount", amount, "--method", "revolut")
    assert topup["status"] == "pending" and topup["redirect_url"]
    requests.post(f"{shell.stack['payments_sandbox']}/payments/{topup['provider_payment_id']}/complete",
                  json={"outcome": "succeeded"}, timeout=10).raise_for_status()
    wait_for(lambda: float(shell.json("billing", "account")["balance"]) == before + float(amount), timeout=30,
             message="the top-up credited")


def test_storage_from_creation_to_deletion(shell):
    created = shell.json("storage", "create", "--name", "cli-backups", "--limit-gb", "50", "--location", "NL")
    storage = created["id"]
    assert any(item["id"] == storage for item in shell.json("storage", "list"))
    made = shell.run("storage", "bucket-create", storage, "cli-bucket-1", "--wait")
    assert "✓" in made.stderr
    assert [bucket["name"] for bucket in shell.json("storage", "buckets", storage)] == ["cli-bucket-1"]
    bad = shell.run("storage", "bucket-create", storage, "Bad_Name", check=False)
    assert bad.returncode == 1 and "name:" in bad.stderr
    keys = shell.json("storage", "credentials", storage)
    assert keys["access_key"] and keys["secret_key"] and keys["endpoints"]
    usage = shell.json("storage", "usage", storage, "--metric", "storage")
    assert usage["metric"] == "storage" and usage["unit"] == "bytes"
    shell.run("storage", "bucket-delete", storage, "cli-bucket-1", "--wait")
    assert shell.json("storage", "buckets", storage) == []
    unconfirmed = shell.run("storage", "delete", storage, check=False)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    shell.run("storage", "delete", storage, "--yes", "--wait")
    assert all(item["id"] != storage for item in shell.json("storage", "list"))


def test_billing_account_invoices_and_a_bank_wire_top_up(shell):
    account = shell.json("billing", "account")
    assert account["currency"] and "balance" in account
    assert "Balance" in shell.run("billing", "account").stdout
    shell.json("billing", "invoices")
    methods = {method["id"] for method in shell.json("billing", "methods")["items"]}
    assert methods == {"paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut"}
    wire = shell.run("billing", "topup", "--amount", "25.00", "--method", "bank_wire")
    assert "reference" in wire.stderr.lower() and "IBAN" in wire.stderr.upper()
    low = shell.run("billing", "topup", "--amount", "5", "--method", "paypal", check=False)
    assert low.returncode == 1 and "amount: At least 20." in low.stderr


def test_a_support_request_with_an_attachment_a_reply_and_closing(shell, tmp_path):
    log = tmp_path / "dmesg.txt"
    log.write_text("kernel: eth0 link down\n")
    created = shell.json("tickets", "create", "--subject", "Network drops", "-m", "eth0 goes down nightly.",
                         "--attach", str(log))
    ticket = created["id"]
    assert any(item["id"] == ticket for item in shell.json("tickets", "list", "--status", "open"))
    shown = shell.run("tickets", "show", ticket)
    assert "eth0 goes down nightly." in shown.stderr and "dmesg.txt" in shown.stderr
    assert "Replied" in shell.run("tickets", "reply", ticket, "-m", "Also at noon.").stderr
    assert shell.json("tickets", "close", ticket)["status"] == "closed"
    assert any(item["id"] == ticket for item in shell.json("tickets", "list", "--status", "closed"))


def test_notifications_follow_prints_new_entries_as_they_happen(shell, servers):
    number = servers[1]["number"]
    follower = shell.popen("notifications", "--follow", "--output", "json", "--limit", "1")
    try:
        shell.run("servers", "reboot", number)
        entries = []
        while not any(e["title"] == f"Reboot {number}" and e["level"] == "success" for e in entries):
            line = follower.stdout.readline()  # one JSON object per line; ends if hostctl exits
            assert line, follower.stderr.read()
            entries.append(json.loads(line))
        reboot = [entry["level"] for entry in entries if entry["title"] == f"Reboot {number}"]
        assert reboot[-2:] == ["info", "success"]
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_a_webhook_receiver_gets_the_signed_operation_succeeded_of_a_reboot(shell, servers):
    """Issue 19's "done when": a token, `hostctl servers reboot … --wait`, and a receiver of
    the customer's hears the signed `operation_succeeded`."""
    receiver = Receiver()
    try:
        secret = shell.run("webhooks", "create", "--url", receiver.url, "--kind", "operation_succeeded",
                           "--kind", "operation_failed").stdout.strip()
        assert secret.startswith("whsec_")
        receiver.secret = secret
        endpoint = shell.json("webhooks", "list")["items"][0]
        number = servers[0]["number"]
        assert "✓ Reboot" in shell.run("servers", "reboot", number, "--wait").stderr
        wait_for(lambda: [b for b in receiver.of_kind("operation_succeeded") if b["data"]["title"] == f"Reboot {number}"],
                 timeout=30, message="the reboot's webhook")
        assert all(attempt["signed"] for attempt in receiver.attempts)
        shell.run("webhooks", "test", endpoint["id"])
        wait_for(lambda: receiver.of_kind("webhook_test"), timeout=30, message="the test event")
        listed = shell.json("webhooks", "deliveries", endpoint["id"])["items"]
        assert {d["kind"] for d in listed} >= {"operation_succeeded", "webhook_test"}
        assert all(d["status"] == "delivered" and d["last_status_code"] == 200 for d in listed)
        shell.run("webhooks", "delete", endpoint["id"])
        assert shell.json("webhooks", "list")["items"] == []
    finally:
        receiver.close()


def test_logout_revokes_the_token_and_forgets_it(stack, tmp_path):
    terminal = Terminal(stack, tmp_path / "home")
    customer = stack["users"][1]
    terminal.run("login", "--username", customer["username"], "--password-stdin", stdin=customer["password"] + "\n")
    token = json.loads((terminal.home / "config.json").read_text())["token"]
    assert "Logged out" in terminal.run("logout").stderr
    assert not (terminal.home / "config.json").exists()
    after = requests.get(f"{stack['gateway']}/api/v1/auth/session", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    assert after.status_code == 401
    assert terminal.run("servers", "list", check=False).returncode == 2
