"""What every command shares: where the API is, the token, the output format, and the
options several commands take."""

from typing import Annotated, Literal, Optional

import typer

from hostctl import config
from hostctl.api import DEFAULT_API, Client
from hostctl.output import FORMATS

class CliError(Exception):
    """A command used wrongly, or a refusal of hostctl itself: exit code 2 and the message."""


def choice(values):
    """The type of an option that takes one of ``values``."""
    return Literal[tuple(values)]


OutputOption = Annotated[Optional[choice(FORMATS)], typer.Option(
    "--output", help="table (default), json or csv.", show_default=False)]
WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the operation to its end and exit with its result.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="How long --wait waits, in seconds.")]


class State:
    """What every command needs: where the API is, the token, the output format."""

    def __init__(self, api=None, token=None, output=None):
        stored = config.load()
        self.api = api or stored.get("api") or DEFAULT_API
        self.token = token or stored.get("token")
        self.output = output or "table"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            if not self.token:
                raise CliError("Not logged in: run `hostctl login`, or set HOSTCTL_TOKEN to an API token.")
            self._client = Client(self.api, self.token)
        return self._client

    def fmt(self, output=None):
        return output or self.output

    def token_id(self):
        """The id of the token in use (asked once)."""
        if not hasattr(self, "_token_id"):
            self._token_id = (self.client.get("/auth/session").get("token") or {}).get("id")
        return self._token_id


def state(ctx):
    return ctx.ensure_object(State)
