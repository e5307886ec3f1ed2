"""``hostctl tickets``: support requests (list, show, create with attachments, reply,
close, reopen)."""

import mimetypes
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from hostctl.commands.common import current, server_id
from hostctl.context import OutputOption, choice
from hostctl.output import emit_list, emit_record, say

app = typer.Typer(no_args_is_help=True)
TicketArg = Annotated[str, typer.Argument(help="The ticket's id.")]
AttachOption = Annotated[Optional[List[Path]], typer.Option(
    "--attach", exists=True, dir_okay=False, readable=True, help="A file to attach (repeatable).")]


def send(state, path, fields, files):
    """POST ``fields`` with ``files`` (multipart) or without (JSON)."""
    if not files:
        return state.client.post(path, fields)
    with ExitStack() as stack:
        parts = [("attachments", (file.name, stack.enter_context(open(file, "rb")),
                                  mimetypes.guess_type(file.name)[0] or "application/octet-stream"))
                 for file in files]
        return state.client.request("POST", path, data=fields, files=parts).json()


@app.command("list")
def list_tickets(
    ctx: typer.Context,
    status: Annotated[choice(["open", "closed", "all"]), typer.Option()] = "all",
    output: OutputOption = None,
):
    """Your support requests."""
    state = current(ctx)
    items = list(state.client.all_pages("/support/tickets", status=status))
    emit_list(state.fmt(output), items, [
        ("ID", "id"), ("Subject", "subject"), ("Status", "status"), ("Server", "server_number"),
        ("Messages", "messages"), ("Last by", "last_author"), ("Updated", "updated_at")], title="tickets")


@app.command()
def show(ctx: typer.Context, ticket: TicketArg, output: OutputOption = None):
    """A request with its whole thread."""
    state = current(ctx)
    detail = state.client.get(f"/support/tickets/{ticket}")
    fmt = state.fmt(output)
    emit_record(fmt, detail, [("ID", "id"), ("Subject", "subject"), ("Status", "status"),
                              ("Server", "server_number"), ("Opened", "created_at"), ("Updated", "updated_at")])
    if fmt == "table":
        for message in detail["messages"]:
            who = message.get("staff_name") or message["author"]
            say(f"\n[bold]{who}[/bold] · {message['created_at']}")
            say(message["body"])
            for attachment in message.get("attachments") or []:
                say(f"  📎 {attachment['filename']} ({attachment['size']:,} bytes)")


@app.command()
def create(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option(help="What it is about.")],
    description: Annotated[str, typer.Option("--description", "-m", help="What happened.")],
    attach: AttachOption = None,
    server: Annotated[Optional[str], typer.Option(help="The server it is about (number or id).")] = None,
    output: OutputOption = None,
):
    """Open a support request."""
    state = current(ctx)
    fields = {"subject": subject, "description": description}
    if server:
        fields["server_id"] = server_id(state.client, server)
    created = send(state, "/support/tickets", fields, attach)
    if state.fmt(output) == "json":
        emit_record("json", created)
    else:
        say(f"Request {created['id']} opened: {created['subject']} ({created['status']}).")


@app.command()
def reply(
    ctx: typer.Context,
    ticket: TicketArg,
    message: Annotated[str, typer.Option("--message", "-m", help="Your reply.")],
    attach: AttachOption = None,
    output: OutputOption = None,
):
    """Reply to a request."""
    state = current(ctx)
    added = send(state, f"/support/tickets/{ticket}/messages", {"body": message}, attach)
    if state.fmt(output) == "json":
        emit_record("json", added)
    else:
        say(f"Replied to {ticket}; it is {added['ticket']['status']}.")


@app.command()
def close(ctx: typer.Context, ticket: TicketArg, output: OutputOption = None):
    """Close a request."""
    state = current(ctx)
    closed = state.client.post(f"/support/tickets/{ticket}/close")
    emit_record("json", closed) if state.fmt(output) == "json" else say(f"Request {ticket} is {closed['status']}.")


@app.command()
def reopen(ctx: typer.Context, ticket: TicketArg, output: OutputOption = None):
    """Reopen a closed request."""
    state = current(ctx)
    opened = state.client.post(f"/support/tickets/{ticket}/reopen")
    emit_record("json", opened) if state.fmt(output) == "json" else say(f"Request {ticket} is {opened['status']}.")



