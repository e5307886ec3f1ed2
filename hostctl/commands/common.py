"""What the command groups share: the state of the root command, server references."""

import re

import typer

from hostctl.api import ApiError
from hostctl.context import state

SERVER_NUMBER = re.compile(r"^SRV-\d+$", re.IGNORECASE)


def current(ctx: typer.Context):
    return state(ctx)


def server_id(client, reference):
    """A server's id from its number (``SRV-10001``) or its id."""
    if not SERVER_NUMBER.match(reference):
        return reference
    number = reference.upper()
    for item in client.get("/servers", q=number, per_page=50)["items"]:
        if item["number"].upper() == number:
            return item["id"]
    raise ApiError(404, "not_found", f"You have no server {number}.")


def gigabytes(value):
    return f"{value / 10**9:.2f} GB" if isinstance(value, (int, float)) else ""
