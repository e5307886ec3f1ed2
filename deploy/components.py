"""Every component of the panel found by name: its service class and its database history.

``common`` never imports the gateway or a service; what has to name them all — the
``panel`` command (``deploy.cli``), the dev stack, the DLQ tool and the tests — finds them
here. A component with a database is a service (its ``projections.schema``) or the gateway
(``gateway.database``).
"""

import importlib
import inspect

from common import config as panel_config
from common import migrations

SERVICES = panel_config.SERVICES
# Every component with a database: the services and the gateway (its sessions).
MIGRATABLE = SERVICES + ("gateway",)


def service_class(service):
    """The nameko service class of ``service``."""
    from common.service import PanelService

    module = importlib.import_module(f"services.{service}.service")
    for _, member in inspect.getmembers(module, inspect.isclass):
        if issubclass(member, PanelService) and member is not PanelService and member.name == service:
            return member
    raise LookupError(f"no service class in services.{service}.service")


def history(component):
    """The migration history (``common.migrations.History``) of a service or the gateway."""
    if component == "gateway":
        from gateway.database import HISTORY

        return HISTORY
    if component not in SERVICES:
        raise LookupError(f"no component named {component!r} (known: {', '.join(MIGRATABLE)})")
    return importlib.import_module(f"services.{component}.projections").schema.history


def migrate(component, url_or_engine):
    """Bring the component's database to the newest revision; returns that revision."""
    return migrations.upgrade(history(component), url_or_engine)
