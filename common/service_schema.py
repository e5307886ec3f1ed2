"""A service's database: its tables and projections, and its migration history.

Every service database holds the event store's core tables, the operations table and the
service's own projection tables in one ``MetaData``. A service's ``projections.py`` builds
its ``ServiceSchema`` with its name and its ``migrations/`` folder, then adds its
projections. No nameko here: the schema is the event store's side of a service, used by the
service base (``common.service``), the ``panel`` command and the tests alike.
"""

import sqlalchemy as sa

from common.eventstore import EventStore, define_core_tables
from common.migrations import History
from common.operations import OperationsProjection, define_operations_table


class ServiceSchema:
    """A service's database schema, projections and migration history."""

    def __init__(self, service, migrations=None):
        self.service = service
        self.metadata = sa.MetaData()
        self.core = define_core_tables(self.metadata)
        self.operations_table = define_operations_table(self.metadata)
        self.projections = [OperationsProjection(self.operations_table)]
        self.migrations_folder = migrations

    @property
    def history(self):
        """The alembic history of this database (``common.migrations``)."""
        if self.migrations_folder is None:
            raise LookupError(f"the {self.service} schema was built without its migrations folder")
        return History.of_service(self.service, self.metadata, self.migrations_folder)

    def add_projection(self, projection):
        self.projections.append(projection)
        return projection

    def create_store(self, engine):
        return EventStore(engine, self.core, self.projections)
