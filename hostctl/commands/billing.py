"""``hostctl billing``: the account (balance, overdue), invoices, transactions, payment
methods and top-ups."""

from typing import Annotated, Optional

import typer

from hostctl.commands.common import current
from hostctl.context import OutputOption, choice
from hostctl.output import emit_list, emit_record, say

app = typer.Typer(no_args_is_help=True)
METHODS = ("paypal", "stripe", "bank_wire", "bitpay", "coinbase", "revolut")


@app.command()
def account(ctx: typer.Context, output: OutputOption = None):
    """Your balance, whether anything is overdue, and what is due."""
    state = current(ctx)
    emit_record(state.fmt(output), state.client.get("/billing/account"), [
        ("Balance", lambda a: f"{a['balance']} {a['currency']}"), ("Overdue", "overdue"),
        ("Unpaid invoices", "unpaid_invoices"), ("Amount due", "amount_due")])


@app.command()
def invoices(
    ctx: typer.Context,
    status: Annotated[Optional[choice(["open", "overdue", "paid"])], typer.Option()] = None,
    output: OutputOption = None,
):
    """Your invoices, newest first."""
    state = current(ctx)
    items = list(state.client.all_pages("/billing/invoices", status=status))
    emit_list(state.fmt(output), items, [
        ("Number", "number"), ("Server", "server_number"), ("Amount", lambda i: f"{i['amount']} {i['currency']}"),
        ("Status", "status"), ("Period", lambda i: f"{i.get('period_start', '')[:10]} – {i.get('period_end', '')[:10]}"),
        ("Due", lambda i: (i.get("due_at") or "")[:10])], title="invoices")


@app.command()
def transactions(ctx: typer.Context, output: OutputOption = None):
    """Every credit and debit of your balance, newest first."""
    state = current(ctx)
    items = list(state.client.all_pages("/billing/transactions"))
    emit_list(state.fmt(output), items, [
        ("At", "at"), ("Direction", "direction"), ("Amount", lambda t: f"{t['amount']} {t['currency']}"),
        ("Reason", "reason"), ("Reference", "reference"), ("Balance after", "balance_after")], title="transactions")


@app.command()
def methods(ctx: typer.Context, output: OutputOption = None):
    """The payment methods a top-up can use, and what each accepts."""
    state = current(ctx)
    answer = state.client.get("/billing/payment-methods")
    emit_list(state.fmt(output), answer["items"], [("ID", "id"), ("Name", "name"), ("Accepts", "accepts")],
              title="payment methods", raw=answer)


@app.command()
def topup(
    ctx: typer.Context,
    amount: Annotated[str, typer.Option(help="How much, at least 20.00.")],
    method: Annotated[choice(METHODS), typer.Option()],
    output: OutputOption = None,
):
    """Top up your balance: prints where to pay (or the bank transfer's details)."""
    state = current(ctx)
    created = state.client.post("/billing/topups", {"amount": amount, "method": method})
    if state.fmt(output) == "json":
        emit_record("json", created)
        return
    say(f"Top-up {created['id']} of {created['amount']} {created['currency']} by {created['method']}: "
        f"{created['status']}.")
    if created.get("redirect_url"):
        say(f"Pay here: {created['redirect_url']}")
    for key, value in (created.get("instructions") or {}).items():
        say(f"  {key.replace('_', ' ')}: {value}")
    say("Your balance is credited when the payment arrives (hostctl notifications --follow).")
