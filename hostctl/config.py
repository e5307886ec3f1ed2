"""Where hostctl keeps its API address and token: ``config.json`` in the user's config
directory (``~/.config/hostctl`` on Linux; ``HOSTCTL_CONFIG_DIR`` overrides it), readable
by its owner only (0600, in a 0700 directory). ``--api``/``HOSTCTL_API`` and
``--token``/``HOSTCTL_TOKEN`` win over what is stored."""

import json
import os
from pathlib import Path

import typer

FILE_NAME = "config.json"


def config_dir():
    return Path(os.environ.get("HOSTCTL_CONFIG_DIR") or typer.get_app_dir("hostctl"))


def config_path():
    return config_dir() / FILE_NAME


def load():
    """The stored settings (empty when there are none)."""
    try:
        return json.loads(config_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def save(settings):
    """Store ``settings``; the file is created 0600 before anything is written to it."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = directory / f".{FILE_NAME}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(settings, handle, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, config_path())


def forget():
    """Remove the stored settings; whether there were any."""
    try:
        config_path().unlink()
        return True
    except FileNotFoundError:
        return False
