"""``hostctl servers``: list (filters, search, paging), export (streamed, with progress),
show, tag, power on/off, reboot and reinstall (``--wait`` follows the operation)."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

from hostctl.commands.common import current, server_id
from hostctl.context import CliError, OutputOption, TimeoutOption, WaitOption, choice
from hostctl.follow import finish_operation
from hostctl.output import emit_list, emit_record, err, say

app = typer.Typer(no_args_is_help=True)

STATUSES = ("active", "overdue", "provisioning", "suspended")
ServerArg = Annotated[str, typer.Argument(help="The server's number (SRV-10001) or id.")]
LIST_COLUMNS = [("Number", "number"), ("Tag", "tag"), ("IP", "ip"), ("Location", "location"),
                ("Status", "status"), ("Power", "power"), ("Plan", "plan"), ("Paid until", "paid_until")]


@app.command("list")
def list_servers(
    ctx: typer.Context,
    location: Annotated[Optional[str], typer.Option(help="Only this location, e.g. NL.")] = None,
    status: Annotated[Optional[choice(STATUSES)], typer.Option(help="Only this status.")] = None,
    search: Annotated[Optional[str], typer.Option("--search", "-q", help="Number, tag or IP.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500)] = 50,
    every: Annotated[bool, typer.Option("--all", help="Every page.")] = False,
    output: OutputOption = None,
):
    """Your servers, filtered by location, status and a search."""
    state = current(ctx)
    filters = {"location": location.upper() if location else None, "status": status, "q": search}
    if every:
        items = list(state.client.all_pages("/servers", **filters))
        emit_list(state.fmt(output), items, LIST_COLUMNS, title="servers", footer=f"{len(items)} servers")
        return
    answer = state.client.get("/servers", page=page, per_page=per_page, **filters)
    pages = max(1, -(-answer["total"] // answer["per_page"]))
    emit_list(state.fmt(output), answer["items"], LIST_COLUMNS, title="servers", raw=answer,
              footer=f"page {answer['page']} of {pages} · {answer['total']} servers")


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[choice(["csv", "json"]), typer.Option("--format")] = "csv",
    to: Annotated[str, typer.Option("-o", "--to", help="The file to write ('-': stdout).")] = "-",
    location: Annotated[Optional[str], typer.Option(help="Only this location.")] = None,
    status: Annotated[Optional[choice(STATUSES)], typer.Option()] = None,
    search: Annotated[Optional[str], typer.Option("--search", "-q")] = None,
):
    """Every server matching the filters as a CSV or JSON file, streamed."""
    state = current(ctx)
    params = {key: value for key, value in {"format": fmt, "location": location.upper() if location else None,
                                            "status": status, "q": search}.items() if value}
    response = state.client.request("GET", "/servers/export", params=params, stream=True, timeout=(10, 300))
    total = int(response.headers["Content-Length"]) if "Content-Length" in response.headers else None
    target = sys.stdout.buffer if to == "-" else open(Path(to), "wb")  # noqa: SIM115 - closed below
    written = lines = 0
    try:
        with Progress(SpinnerColumn(), TextColumn("exporting"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=err, transient=True, disable=to == "-") as progress:
            task = progress.add_task("export", total=total)
            for chunk in response.iter_content(chunk_size=64 * 1024):
                target.write(chunk)
                written += len(chunk)
                lines += chunk.count(b"\n")
                progress.update(task, advance=len(chunk))
    finally:
        if target is not sys.stdout.buffer:
            target.close()
    if to != "-":
        rows = f"{lines - 1} servers, " if fmt == "csv" else ""
        say(f"Wrote {rows}{written:,} bytes to {to}.")


@app.command()
def show(ctx: typer.Context, server: ServerArg, output: OutputOption = None):
    """One server: details, IPs, OS, hardware and its recent operations."""
    state = current(ctx)
    detail = state.client.get(f"/servers/{server_id(state.client, server)}")
    fmt = state.fmt(output)
    emit_record(fmt, detail, [
        ("Number", "number"), ("ID", "id"), ("Tag", "tag"), ("Status", "status"),
        ("Power", lambda s: f"{s['power']} ({s['power_source']})" if s.get("power_source") else s["power"]),
        ("Location", "location"), ("Plan", "plan"), ("IPs", "ips"),
        ("OS", lambda s: (s.get("os") or {}).get("name") or (s.get("os") or {}).get("id")),
        ("Hardware", "hardware"), ("Price/month", "price_month"), ("Paid until", "paid_until")])
    if fmt == "table" and detail.get("recent_operations"):
        emit_list(fmt, detail["recent_operations"], [
            ("Operation", "title"), ("Status", "status"), ("Detail", "detail"), ("Started", "created_at"),
            ("Finished", "finished_at")], title="recent operations")


@app.command()
def tag(
    ctx: typer.Context,
    server: ServerArg,
    new_tag: Annotated[Optional[str], typer.Argument(metavar="TAG", help="The new tag.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the tag.")] = False,
    output: OutputOption = None,
):
    """Set (or --clear) a server's tag."""
    if (new_tag is None) == (not clear):
        raise CliError("Give a TAG, or --clear.")
    state = current(ctx)
    updated = state.client.patch(f"/servers/{server_id(state.client, server)}", {"tag": None if clear else new_tag})
    if state.fmt(output) == "json":
        emit_record("json", updated)
    else:
        say(f"{updated['number']}: " + (f"tagged “{updated['tag']}”." if updated.get("tag") else "tag removed."))


@app.command("os-images")
def os_images(ctx: typer.Context, output: OutputOption = None):
    """The OS images a server can be installed with."""
    state = current(ctx)
    answer = state.client.get("/os-images")
    emit_list(state.fmt(output), answer["items"], [("ID", "id"), ("Name", "name")], title="OS images", raw=answer)


def run_action(ctx, server, action, wait, timeout, output, os_image=None):
    state = current(ctx)
    body = {"action": action}
    if os_image:
        body["os"] = os_image
    target = server_id(state.client, server)
    accepted = state.client.post(f"/servers/{target}/actions", body)
    finish_operation(state, accepted["operation"], wait, timeout, output)


@app.command("power-on")
def power_on(ctx: typer.Context, server: ServerArg, wait: WaitOption = False, timeout: TimeoutOption = 300.0,
             output: OutputOption = None):
    """Power a server on."""
    run_action(ctx, server, "power_on", wait, timeout, output)


@app.command("power-off")
def power_off(ctx: typer.Context, server: ServerArg, wait: WaitOption = False, timeout: TimeoutOption = 300.0,
              output: OutputOption = None):
    """Power a server off (hard)."""
    run_action(ctx, server, "power_off", wait, timeout, output)


@app.command()
def reboot(ctx: typer.Context, server: ServerArg, wait: WaitOption = False, timeout: TimeoutOption = 300.0,
           output: OutputOption = None):
    """Reboot a server."""
    run_action(ctx, server, "reboot", wait, timeout, output)


@app.command()
def reinstall(
    ctx: typer.Context,
    server: ServerArg,
    os_image: Annotated[str, typer.Option("--os", help="The OS image id (hostctl servers os-images).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask: every disk is erased.")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 1800.0,
    output: OutputOption = None,
):
    """Reinstall a server's OS: every disk is erased (asks you to type its number)."""
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("Reinstalling erases every disk: confirm with --yes.")
        typed = typer.prompt(f"Reinstalling erases every disk of {server}. Type its number to confirm")
        if typed.strip().upper() != server.upper():
            raise CliError("The number did not match; nothing was done.")
    run_action(ctx, server, "reinstall", wait, timeout, output, os_image=os_image)
