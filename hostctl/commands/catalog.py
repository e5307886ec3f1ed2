"""``hostctl catalog instant|stock``: the offers you can order, by category and location."""

from typing import Annotated, Optional

import typer

from hostctl.commands.common import current
from hostctl.context import OutputOption, choice
from hostctl.output import emit_list

app = typer.Typer(no_args_is_help=True)

INSTANT_CATEGORIES = ("all", "gpu", "vps", "dedicated")
STOCK_CATEGORIES = ("all", "1cpu", "2cpu", "amd-ryzen", "amd-legacy", "intel", "gpu")
COLUMNS = [("ID", "id"), ("Name", "name"), ("Category", "category"), ("CPU", "cpu"), ("RAM GB", "ram_gb"),
           ("Disk", "disk"), ("GPU", "gpu"), ("Location", "location"),
           ("Price/month", lambda o: f"{o['price_month']} {o['currency']}"), ("Available", "available")]


def show(ctx, kind, category, location, output):
    state = current(ctx)
    answer = state.client.get(f"/catalog/{kind}", category=category, location=location.upper() if location else None)
    columns = COLUMNS + ([("Delivery", "deploy_eta")] if kind == "stock" else [])
    emit_list(state.fmt(output), answer["items"], columns, title=f"{kind} offers", raw=answer)


@app.command()
def instant(
    ctx: typer.Context,
    category: Annotated[choice(INSTANT_CATEGORIES), typer.Option()] = "all",
    location: Annotated[Optional[str], typer.Option(help="Only this location, e.g. NL.")] = None,
    output: OutputOption = None,
):
    """Instant servers (ready in minutes): All, GPU, VPS, Dedicated."""
    show(ctx, "instant", category, location, output)


@app.command()
def stock(
    ctx: typer.Context,
    category: Annotated[choice(STOCK_CATEGORIES), typer.Option()] = "all",
    location: Annotated[Optional[str], typer.Option(help="Only this location, e.g. NL.")] = None,
    output: OutputOption = None,
):
    """Stock servers (delivered within one business day), in their seven groups."""
    show(ctx, "stock", category, location, output)
