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
