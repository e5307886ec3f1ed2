"""hostctl's commands: the root (login, logout, whoami, order, notifications) and the
groups of ``hostctl.commands``. Every command reads the API address and token from
``State`` (options, environment, then the config file), prints with ``hostctl.output``,
and fails with exit code 1 and the API's message and request id on stderr."""

import getpass
import json
import socket
import sys
from typing import Annotated, Optional

import typer

from hostctl import __version__, config
from hostctl.api import DEFAULT_API, ApiError, Client
from hostctl.context import CliError, OutputOption, State, TimeoutOption, WaitOption, choice, state
from hostctl.follow import finish_operation
from hostctl.output import FORMATS, emit_list, emit_record, say

# What `hostctl login` asks its token for: everything a customer can do from a terminal.
LOGIN_SCOPES = ["read", "write", "storage:secrets", "tokens:write"]

app = typer.Typer(
    name="hostctl", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Manage your servers, orders, S3 storage, billing and support requests from the command line.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_callback(value: bool):
    if value:
        print(f"hostctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    api: Annotated[Optional[str], typer.Option(envvar="HOSTCTL_API", help=f"The API's address [default: {DEFAULT_API}].")] = None,
    token: Annotated[Optional[str], typer.Option(envvar="HOSTCTL_TOKEN", help="An API token (hpat_…).", show_envvar=True)] = None,
    output: Annotated[Optional[choice(FORMATS)], typer.Option(envvar="HOSTCTL_OUTPUT", help="table (default), json or csv.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version.")] = False,
):
    ctx.obj = State(api, token, output)


# -- logging in --------------------------------------------------------------------------

def ask_code(client, challenge):
    """Ask for the second factor until it passes; the session it opens."""
    channels = challenge.get("channels") or []
    sent = challenge.get("sent_via")
    if sent:
        say(f"A code was sent by {'SMS' if sent.startswith('sms') else sent}.")
    hints = ["the code"]
    if "sms_alt" in channels:
        hints.append("'s' to send it by another SMS provider")
    if "voice" in channels:
        hints.append("'v' for a voice call")
    hints.append("'r' to use a recovery code")
    while True:
        answer = typer.prompt(f"Code ({', '.join(hints)})").strip()
        try:
            if answer.lower() == "s":
                client.post("/auth/2fa/resend", {"challenge_id": challenge["challenge_id"], "channel": "sms_alt"},
                            idempotent=False)
                say("Sent by another SMS provider.")
                continue
            if answer.lower() == "v":
                languages = client.get("/auth/2fa/languages")["items"]
                say("Languages: " + ", ".join(f"{item['code']} ({item['name']})" for item in languages))
                language = typer.prompt("Dictation language", default="en")
                client.post("/auth/2fa/resend", {"challenge_id": challenge["challenge_id"], "channel": "voice",
                                                 "language": language}, idempotent=False)
                say(f"Calling you; the code is read out in {language}.")
                continue
            body = {"challenge_id": challenge["challenge_id"]}
            if answer.lower() == "r":
                body["recovery_code"] = typer.prompt("Recovery code").strip()
            else:
                body["code"] = answer
            return client.post("/auth/2fa/verify", body, idempotent=False)
        except ApiError as error:
            if error.code in ("invalid_code", "validation_error"):
                say(f"[red]{error.message}[/red]")
                continue
            raise


@app.command()
def login(
    ctx: typer.Context,
    username: Annotated[Optional[str], typer.Option(help="Your username (asked when missing).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    expires_in_days: Annotated[int, typer.Option(min=1, max=365, help="How long the stored token lives.")] = 90,
):
    """Log in with your password and second factor; stores an API token (0600) for later commands."""
    current = state(ctx)
    client = Client(current.api)
    username = username or typer.prompt("Username")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("Password: ")
    answer = client.post("/auth/login", {"username": username, "password": password}, idempotent=False)
    if answer["status"] == "2fa_required":
        answer = ask_code(client, answer)
    session = Client(current.api, answer["token"])
    try:
        created = session.post("/tokens", {"name": f"hostctl on {socket.gethostname()}"[:100],
                                           "scopes": LOGIN_SCOPES, "expires_in_days": expires_in_days})
    finally:
        try:
            session.post("/auth/logout", idempotent=False)  # the token is all hostctl keeps
        except ApiError:
            pass
    config.save({"api": current.api, "token": created["token"], "token_id": created["id"], "username": username})
    say(f"Logged in as {username}. Token {created['id']} (…{created['hint']}) stored in {config.config_path()}, "
        f"expires {created['expires_at'][:10]}.")


@app.command()
def logout(ctx: typer.Context):
    """Revoke the stored token and forget it."""
    stored = config.load()
    if stored.get("token") and stored.get("token_id"):
        try:
            Client(stored.get("api") or state(ctx).api, stored["token"]).delete(f"/tokens/{stored['token_id']}")
        except ApiError as error:
            if error.status not in (401, 404):
                raise
    say("Logged out." if config.forget() else "Not logged in.")


@app.command()
def whoami(ctx: typer.Context, output: OutputOption = None):
    """Who the token belongs to, what it may do and until when."""
    current = state(ctx)
    session = current.client.get("/auth/session")
    record = {"username": session["user"]["username"], "user_id": session["user"]["id"], "via": session["via"],
              "token_id": (session.get("token") or {}).get("id"),
              "scopes": (session.get("token") or {}).get("scopes"), "expires_at": session["expires_at"],
              "api": current.api}
    emit_record(current.fmt(output), record if current.fmt(output) != "json" else session)


# -- orders and the action log --------------------------------------------------------

@app.command()
def order(
    ctx: typer.Context,
    offer: Annotated[str, typer.Argument(help="The offer's id (hostctl catalog instant|stock).")],
    location: Annotated[str, typer.Option(help="Where, e.g. NL.")],
    os: Annotated[str, typer.Option("--os", help="The OS image id (hostctl servers os-images).")],
    tag: Annotated[Optional[str], typer.Option(help="A tag for the new server.")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 900.0,
    output: OutputOption = None,
):
    """Order a server from the catalog; it is paid from your balance."""
    current = state(ctx)
    body = {"offer_id": offer, "location": location, "os": os}
    if tag:
        body["tag"] = tag
    accepted = current.client.post("/orders", body)
    placed = accepted["order"]
    if not wait and current.fmt(output) == "json":
        emit_record("json", accepted)
        return
    eta = f", delivery expected {placed['deploy_eta']}" if placed.get("deploy_eta") else ""
    say(f"Order {placed['id']} placed: {placed['name']} in {placed['location']}, "
        f"{placed['price_month']} {placed['currency']}/month{eta}.")
    finish_operation(current, accepted["operation"], wait, timeout, output)
    if wait and current.fmt(output) != "json":
        delivered = current.client.get(f"/orders/{placed['id']}")
        if delivered.get("server_id"):
            server = current.client.get(f"/servers/{delivered['server_id']}")
            say(f"Your server: {server['number']} ({server.get('ip') or 'no IP yet'}).")


@app.command()
def orders(ctx: typer.Context, output: OutputOption = None):
    """Your orders and their state."""
    current = state(ctx)
    items = list(current.client.all_pages("/orders"))
    emit_list(current.fmt(output), items, [
        ("ID", "id"), ("Offer", "name"), ("Location", "location"), ("Status", "status"),
        ("Price/month", lambda o: f"{o['price_month']} {o['currency']}"), ("ETA", "deploy_eta"),
        ("Server", "server_id"), ("Reason", "reason")], title="orders")


@app.command()
def notifications(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new entries as they come.")] = False,
    every: Annotated[bool, typer.Option("--all", help="Every entry, not only this token's.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many past entries.")] = 20,
    output: OutputOption = None,
):
    """Your action log (newest first); --follow streams new entries live (with --output
    json: one JSON object per line, oldest first, past entries then new ones)."""
    current = state(ctx)
    fmt = current.fmt(output)
    answer = current.client.get("/notifications", scope="all" if every else "session", per_page=limit)
    if follow and fmt == "json":
        for item in reversed(answer["items"]):
            print(json.dumps(item), flush=True)
    else:
        emit_list(fmt, answer["items"], [("When", "created_at"), ("Level", "level"), ("Title", "title"),
                                         ("Details", "body")], title="entries", raw=answer,
                  footer=f"{answer['unread']} unread" if "unread" in answer else None)
    if not follow:
        return
    say("[dim]Following; Ctrl-C to stop.[/dim]")
    mine = (None, f"token:{current.token_id()}")
    last = answer["items"][0]["position"] if answer["items"] else None
    for event, entry in current.client.events(last_event_id=last):
        if event != "notification" or (not every and entry.get("session_id") not in mine):
            continue
        if fmt == "json":
            print(json.dumps(entry), flush=True)
        else:
            mark = {"success": "[green]✓[/green]", "error": "[red]✗[/red]"}.get(entry["level"], "•")
            say(f"{entry['created_at'][11:19]} {mark} {entry['title']}: {entry['body']}")


def register_groups():
    from hostctl.commands import billing, catalog, servers, storage, tickets, tokens, webhooks

    app.add_typer(servers.app, name="servers", help="Your servers: list, export, show, tag, power, reinstall.")
    app.add_typer(catalog.app, name="catalog", help="Servers you can order: instant and stock.")
    app.add_typer(storage.app, name="storage", help="S3 storages, their buckets, keys and usage.")
    app.add_typer(billing.app, name="billing", help="Balance, invoices, transactions and top-ups.")
    app.add_typer(tickets.app, name="tickets", help="Support requests.")
    app.add_typer(tokens.app, name="tokens", help="API tokens for scripts and this tool.")
    app.add_typer(webhooks.app, name="webhooks", help="Signed callbacks when operations finish, and more.")


register_groups()


def print_error(error):
    say(f"[red]Error:[/red] {error.message}")
    for field, reasons in (error.fields or {}).items():
        reasons = reasons if isinstance(reasons, list) else [str(reasons)]
        say(f"  {field}: {' '.join(map(str, reasons))}")
    details = [f"code {error.code}"]
    if error.status:
        details.append(f"HTTP {error.status}")
    if error.extra.get("retry_after"):
        details.append(f"retry after {error.extra['retry_after']} s")
    if error.request_id:
        details.append(f"request id {error.request_id}")
    say(f"[dim]({', '.join(details)})[/dim]")


def main():
    """The console script: API errors end with exit code 1 and their message on stderr."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except ApiError as error:
        print_error(error)
        sys.exit(1)
    except CliError as error:
        say(f"[red]Error:[/red] {error}")
        sys.exit(2)
    except typer.Abort:
        say("Aborted.")
        sys.exit(130)
    except typer.TyperException as error:  # a usage error of the command line itself
        if not hasattr(error, "show"):
            raise
        error.show()
        sys.exit(getattr(error, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)
