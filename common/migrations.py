"""Schema migrations with alembic, one history per component.

The environment (``common/alembic``) is shared. A component hands its ``History`` down —
its name, its tables and the folders of its revisions — so this module never needs to know
where the gateway or a service keeps them: a service's ``ServiceSchema`` builds its history
from its ``migrations/`` folder (after the shared core revision); the gateway declares its
own (``gateway.database``); ``deploy.components`` finds either by name for the ``panel``
command, the dev stack and the tests. ``upgrade`` brings a database to the newest revision;
``require_head`` is called at start and refuses to run on an old schema.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from common.db import create_engine

ENV_DIR = Path(__file__).resolve().parent / "alembic"
# The shared base revision (the event store's core tables); a service's first revision
# has ``down_revision = "core_0001"``.
CORE_VERSIONS = ENV_DIR / "versions"


class SchemaOutdated(RuntimeError):
    """The database is not at the revision the code needs."""


@dataclass(frozen=True)
class History:
    """What alembic needs of one component: its name (for messages), the tables its code
    declares (compared with the database by the migration tests) and its revision folders."""

    component: str
    metadata: object
    folders: tuple

    @classmethod
    def of_service(cls, component, metadata, folder):
        """A service's history: the shared core revision, then its own folder's."""
        return cls(component, metadata, (CORE_VERSIONS, Path(folder)))


def alembic_config(history, connection=None):
    config = Config()
    config.set_main_option("script_location", str(ENV_DIR))
    config.set_main_option("version_path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in history.folders if p.is_dir())
    )
    config.attributes["metadata"] = history.metadata
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head(history):
    return ScriptDirectory.from_config(alembic_config(history)).get_current_head()


def current(engine):
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(history, url_or_engine):
    """Migrate the component's database to the newest revision; returns that revision."""
    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    with engine.begin() as conn:
        command.upgrade(alembic_config(history, conn), "head")
    return current(engine)


def require_head(history, engine):
    have, want = current(engine), head(history)
    if have != want:
        raise SchemaOutdated(
            f"the {history.component} database is at revision {have}, the code needs {want}: "
            f"run `panel migrate {history.component}` first"
        )
