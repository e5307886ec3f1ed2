"""Service configuration: one YAML file per service under ``deploy/config/``.

Values may be written ``${VAR:default}``; the environment overrides the default. This is
nameko's own syntax and parser, so ``nameko run --config`` and our ``panel`` command read
the same file the same way. Secrets appear only as ``${VAR}`` references, never inline.
"""

import os
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("PANEL_CONFIG_DIR", REPO_ROOT / "deploy" / "config"))

SERVICES = ("auth", "inventory", "orders", "storage", "billing", "support", "notify")

setup_yaml_parser()


def config_path(service):
    return CONFIG_DIR / f"{service}.yaml"


def load(service_or_path):
    """The configuration of a service (by name) or of a YAML file (by path)."""
    path = Path(service_or_path)
    if not path.suffix:
        path = config_path(service_or_path)
    with open(path) as handle:
        return yaml.safe_load(handle)


DEV_CREDENTIALS = "DEV_CREDENTIALS"


class MissingCredentials(RuntimeError):
    """Credentials a service needs were not given: it refuses to start rather than run with
    guessable ones."""


def dev_credentials_allowed(config):
    """True when ``DEV_CREDENTIALS`` is on (``true``/``1``/``yes``): only the dev stack and
    the tests, whose stand-ins accept their published development credentials."""
    value = config.get(DEV_CREDENTIALS)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


class Credentials:
    """Reads a service's credentials from its config, failing closed.

    ``credentials(key)`` is the configured value as text (YAML may turn an all-digit one into
    a number). A key absent, null or empty is *missing*: with ``DEV_CREDENTIALS`` on it
    stands for the stand-in's development value (``dev_values[key]``), otherwise it is
    noted, and ``check()`` raises ``MissingCredentials`` naming every missing key. A
    development webhook secret is public (it is in this repository), so a production
    service that fell back to it would accept forged payment notices.
    """

    def __init__(self, config, dev_values, service):
        self.config = config
        self.dev_values = dev_values
        self.service = service
        self.allow_dev = dev_credentials_allowed(config)
        self.missing = []

    def __call__(self, key):
        value = self.config.get(key)
        if value is not None and str(value).strip():
            return str(value)
        if self.allow_dev:
            return self.dev_values[key]
        if key not in self.missing:
            self.missing.append(key)
        return ""

    def check(self):
        """Raise ``MissingCredentials`` when any credential read so far was missing."""
        if self.missing:
            raise MissingCredentials(
                f"{self.service}: {', '.join(self.missing)} must be set (from the environment); "
                f"only the dev stack may leave them unset, with {DEV_CREDENTIALS}=true, to use "
                "the stand-ins' published development values")
