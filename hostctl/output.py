"""How answers are printed: ``--output table`` (rich, for people), ``json`` (the API's
own objects, for scripts and jq) or ``csv`` (for spreadsheets). Messages for people go to
stderr, so stdout stays clean for the data."""

import csv
import json
import re
import sys
from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")


def moment(text):
    """An ISO 8601 timestamp as people read it: ``2026-12-06 19:59:40`` (UTC)."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def cell(value):
    """A value as a table or CSV cell (timestamps shortened; JSON output keeps them whole)."""
    if value is None:
        return ""
    if isinstance(value, str) and ISO_MOMENT.match(value):
        return moment(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={cell(item)}" for key, item in value.items())
    return str(value)


def value_of(item, column):
    key = column[1]
    return key(item) if callable(key) else item.get(key)


def emit_list(fmt, items, columns, title=None, raw=None, footer=None):
    """A list: ``columns`` are ``(header, key or function of the item)``; ``raw`` is what
    ``--output json`` prints: the API's answer when the list is one answer (``items``,
    ``total``, ``page``…), a plain array when hostctl gathered every page."""
    items = list(items)
    if fmt == "json":
        print(json.dumps(items if raw is None else raw, indent=2, default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow([header for header, _ in columns])
        for item in items:
            writer.writerow([cell(value_of(item, column)) for column in columns])
    else:
        if not items:
            err.print(f"[dim]No {title or 'items'}.[/dim]")
            return
        table = Table(title=title, title_justify="left", header_style="bold")
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        for item in items:
            table.add_row(*[cell(value_of(item, column)) for column in columns])
        out.print(table)
        if footer:
            err.print(f"[dim]{footer}[/dim]")


def emit_record(fmt, record, rows=None, title=None):
    """One object: as ``field  value`` lines in a table (``rows``: which fields, as
    ``(label, key or function)``), as JSON, or as a one-row CSV."""
    rows = rows or [(key, key) for key in record]
    if fmt == "json":
        print(json.dumps(record, indent=2, default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow([label for label, _ in rows])
        writer.writerow([cell(value_of(record, row)) for row in rows])
    else:
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for row in rows:
            table.add_row(row[0], cell(value_of(record, row)))
        out.print(table)


def say(message):
    """A message for the person at the terminal (stderr)."""
    err.print(message, highlight=False)
