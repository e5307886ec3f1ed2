"""Every service's migrations, on SQLite and PostgreSQL, produce exactly the schema its code
declares, and a service refuses to start on a database that is not migrated."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from common.config import SERVICES
from common.db import create_engine
from common import migrations
from deploy.components import history, migrate


@pytest.mark.parametrize("service", SERVICES + ("gateway",))
def test_migrated_schema_equals_the_declared_one(service, database_url):
    engine = create_engine(database_url)

    revision = migrate(service, engine)

    assert revision == migrations.head(history(service))
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), history(service).metadata)
    assert differences == []
    migrations.require_head(history(service), engine)  # does not raise
    assert migrate(service, engine) == revision  # running it again is harmless


def test_an_unmigrated_database_is_refused_with_the_command_to_run(sqlite_url):
    with pytest.raises(migrations.SchemaOutdated, match="panel migrate auth"):
        migrations.require_head(history("auth"), create_engine(sqlite_url))
