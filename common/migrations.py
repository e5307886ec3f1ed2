"""Schema migrations with alembic, one history per service.

The environment (``common/alembic``) is shared; each service's revisions live in
``services/<name>/migrations/``. ``upgrade`` brings a database to the newest revision;
``require_head`` is called at service start and refuses to run on an old schema.
"""

import importlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from common.config import REPO_ROOT
from common.db import create_engine

ENV_DIR = Path(__file__).resolve().parent / "alembic"


class SchemaOutdated(RuntimeError):
    """The database is not at the revision the code needs."""


def metadata_of(component):
    """The tables a service (or the gateway) declares."""
    if component == "gateway":
        importlib.import_module("gateway.idempotency")  # its table joins the sessions' metadata
        return importlib.import_module("gateway.sessions").metadata
    return importlib.import_module(f"services.{component}.projections").schema.metadata


def version_locations(component):
    if component == "gateway":
        return [REPO_ROOT / "gateway" / "migrations"]
    # The shared base revision (core tables) first, then the service's own revisions,
    # whose first one has ``down_revision = "core_0001"``.
    return [ENV_DIR / "versions", REPO_ROOT / "services" / component / "migrations"]


def alembic_config(service, connection=None):
    config = Config()
    config.set_main_option("script_location", str(ENV_DIR))
    locations = version_locations(service)
    config.set_main_option("version_path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in locations if p.is_dir())
    )
    config.attributes["metadata"] = metadata_of(service)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head(service):
    return ScriptDirectory.from_config(alembic_config(service)).get_current_head()


def current(engine):
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(service, url_or_engine):
    """Migrate the service's database to the newest revision."""
    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    with engine.begin() as conn:
        command.upgrade(alembic_config(service, conn), "head")
    return current(engine)


def require_head(service, engine):
    have, want = current(engine), head(service)
    if have != want:
        raise SchemaOutdated(
            f"the {service} database is at revision {have}, the code needs {want}: "
            f"run `panel migrate {service}` first"
        )
