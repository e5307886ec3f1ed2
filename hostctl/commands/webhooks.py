"""``hostctl webhooks``: endpoints that hear of finished operations, completed orders,
credited payments and ticket status changes (create, list, deliveries, test, delete)."""

from typing import Annotated, List, Optional

import typer

from hostctl.commands.common import current
from hostctl.context import OutputOption
from hostctl.output import emit_list, emit_record, say

app = typer.Typer(no_args_is_help=True)
KINDS = ("operation_succeeded", "operation_failed", "order_completed", "payment_credited", "ticket_status_changed")
EndpointArg = Annotated[str, typer.Argument(help="The endpoint's id (we_…).")]


@app.command()
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Where to POST (https://…).")],
    kind: Annotated[List[str], typer.Option("--kind", "-k", help=f"What it hears (repeatable): {', '.join(KINDS)}.")],
    description: Annotated[Optional[str], typer.Option(help="A note for yourself.")] = None,
    output: OutputOption = None,
):
    """Register an endpoint; prints its signing secret once (to stdout)."""
    state = current(ctx)
    created = state.client.post("/webhooks", {"url": url, "kinds": kind, "description": description})
    if state.fmt(output) == "json":
        emit_record("json", created)
        return
    say(f"Endpoint {created['id']} hears {', '.join(created['kinds'])} at {created['url']}. Its signing secret "
        "follows: store it now, it is not shown again. Verify each Panel-Signature header with it.")
    print(created["secret"])


@app.command("list")
def list_endpoints(ctx: typer.Context, output: OutputOption = None):
    """Your webhook endpoints."""
    state = current(ctx)
    answer = state.client.get("/webhooks")
    emit_list(state.fmt(output), answer["items"], [
        ("ID", "id"), ("URL", "url"), ("Kinds", "kinds"), ("Status", "status"), ("Failing since", "failing_since"),
        ("Created", "created_at")], title="webhook endpoints", raw=answer)


@app.command()
def deliveries(ctx: typer.Context, endpoint: EndpointArg, output: OutputOption = None):
    """An endpoint's deliveries, newest first: attempts and the receiver's status codes."""
    state = current(ctx)
    answer = state.client.get(f"/webhooks/{endpoint}/deliveries")
    emit_list(state.fmt(output), answer["items"], [
        ("Event", "event_id"), ("Kind", "kind"), ("Status", "status"), ("Attempts", "attempts"),
        ("Last answer", lambda d: d["last_status_code"] or d["last_error"]), ("Created", "created_at"),
        ("Next attempt", "next_attempt_at")], title="deliveries", raw=answer)


@app.command()
def test(ctx: typer.Context, endpoint: EndpointArg, output: OutputOption = None):
    """Send a webhook_test event to the endpoint now."""
    state = current(ctx)
    queued = state.client.post(f"/webhooks/{endpoint}/test")
    emit_record("json", queued) if state.fmt(output) == "json" else say(
        f"Test event {queued['event_id']} queued; see `hostctl webhooks deliveries {endpoint}`.")


@app.command()
def delete(ctx: typer.Context, endpoint: EndpointArg):
    """Delete an endpoint: nothing more is sent to it."""
    current(ctx).client.delete(f"/webhooks/{endpoint}")
    say(f"Endpoint {endpoint} deleted.")
