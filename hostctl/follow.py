"""Following an operation to its end (``--wait``): a spinner while it runs, its progress
entries as they come, and the exit code of its result (0 succeeded, 1 failed, 3 still
running when ``--timeout`` ran out)."""

import typer

from hostctl.api import OperationTimeout
from hostctl.output import emit_record, err, say


def sentence(text):
    return text if text.endswith((".", "!", "?")) else f"{text}."


def finish_operation(current, operation, wait, timeout, output=None, label=None):
    """Print an accepted operation, or with ``wait`` follow it and exit with its result."""
    fmt = current.fmt(output)
    if not wait:
        if fmt == "json":
            emit_record(fmt, operation)
        else:
            say(f"{label or operation['title']}: accepted (operation {operation['id']}). "
                f"Follow it with --wait or `hostctl notifications --follow`.")
        return operation

    def progress(entry):
        if entry.get("level") == "info":
            say(f"  {entry['title']}: {entry['body']}")

    try:
        with err.status(f"{operation['title']}…", spinner="dots"):
            final = current.client.wait_for_operation(operation["id"], timeout=timeout, on_progress=progress)
    except OperationTimeout:
        say(f"[yellow]Still running after {timeout:g} s[/yellow] (operation {operation['id']}); it goes on.")
        raise typer.Exit(3)
    if fmt == "json":
        emit_record(fmt, final)
    elif final["status"] == "succeeded":
        say(f"[green]✓[/green] {final['title']}: {sentence(final.get('detail') or 'done')}")
    else:
        say(f"[red]✗[/red] {final['title']}: {sentence(final.get('detail') or 'failed')}")
    if final["status"] != "succeeded":
        raise typer.Exit(1)
    return final
