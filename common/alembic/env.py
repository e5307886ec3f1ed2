"""Alembic environment shared by every service; ``common.migrations`` passes the component's
connection and metadata in ``config.attributes``. Each service keeps its own versions in
``services/<name>/migrations/``."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
target_metadata = config.attributes.get("metadata")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
