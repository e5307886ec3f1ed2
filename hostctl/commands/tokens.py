"""``hostctl tokens``: API tokens for scripts (create, list, revoke)."""

from typing import Annotated, List, Optional

import typer

from hostctl.commands.common import current
from hostctl.context import CliError, OutputOption
from hostctl.output import emit_list, emit_record, say

app = typer.Typer(no_args_is_help=True)


def scope_summary(scopes, available):
    """Scopes as people scan them: ``servers:write`` stands for its read too, and write
    access to every area (``available``: every scope the API lists) reads ``every area
    (read & write)``."""
    names = {scope["name"] for scope in available}
    areas = {name.split(":")[0] for name in names if name.endswith(":read") and name[:-5] + ":write" in names}
    granted = set(scopes)
    shown = [scope for scope in scopes
             if not (scope.endswith(":read") and scope[:-5] + ":write" in granted)]
    if areas and all(f"{area}:write" in granted for area in areas):
        shown = ["every area (read & write)",
                 *[s for s in shown if not (s.split(":")[0] in areas and s.endswith((":read", ":write")))]]
    return ", ".join(shown)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What it is for, e.g. 'backup cron'.")],
    scope: Annotated[List[str], typer.Option(
        "--scope", "-s", help="A scope such as servers:write, or read / write for every area (repeatable); "
                              "`hostctl tokens scopes` lists them.")],
    expires_in_days: Annotated[Optional[int], typer.Option(min=1, max=365, help="Default 90.")] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="A token that never expires.")] = False,
    allow_ip: Annotated[Optional[List[str]], typer.Option(
        "--allow-ip", help="Only from this address or CIDR range (repeatable).")] = None,
    output: OutputOption = None,
):
    """Create an API token; its secret is printed once (to stdout)."""
    state = current(ctx)
    body = {"name": name, "scopes": scope, "allowed_ips": allow_ip or []}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    if no_expiry:
        body["no_expiry"] = True
    created = state.client.post("/tokens", body)
    if state.fmt(output) == "json":
        emit_record("json", created)
        return
    say(f"Token {created['id']} “{created['name']}”: {', '.join(created['scopes'])}; "
        f"expires {(created['expires_at'] or 'never')[:10]}. Store the secret now: it is not shown again.")
    print(created["token"])


@app.command("list")
def list_tokens(ctx: typer.Context, output: OutputOption = None):
    """Your API tokens, with when and from where each was last used."""
    state = current(ctx)
    answer = state.client.get("/tokens")
    emit_list(state.fmt(output), answer["items"], [
        ("ID", "id"), ("Name", "name"), ("Ends in", lambda t: f"…{t['hint']}"), ("Scopes", lambda t: scope_summary(t["scopes"], answer["available_scopes"])),
        ("Status", "status"), ("Expires", lambda t: (t["expires_at"] or "never")[:10]),
        ("Last used", lambda t: (t["last_used_at"] or "never")[:19]), ("From", "last_used_ip"),
        ("Allowed from", "allowed_ips")], title="API tokens", raw=answer)


@app.command()
def scopes(ctx: typer.Context, output: OutputOption = None):
    """Every scope a token can have."""
    state = current(ctx)
    emit_list(state.fmt(output), state.client.get("/tokens")["available_scopes"],
              [("Scope", "name"), ("Allows", "description")], title="scopes")


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[Optional[str], typer.Argument(metavar="ID", help="The token's id (tok_…).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Revoke every token (this one too).")] = False,
    output: OutputOption = None,
):
    """Revoke a token (or --all): it stops working at once."""
    if (token_id is None) == (not every):
        raise CliError("Give a token ID, or --all.")
    state = current(ctx)
    if every:
        answer = state.client.delete("/tokens")
        emit_record("json", answer) if state.fmt(output) == "json" else say(f"Revoked {answer['revoked']} tokens.")
        return
    revoked = state.client.delete(f"/tokens/{token_id}")
    emit_record("json", revoked) if state.fmt(output) == "json" else say(f"Token {revoked['id']} revoked.")
