"""The event store shared by every service: log, projections, outbox relay and inbox."""

from common.eventstore.aggregate import Aggregate
from common.eventstore.projections import Projection
from common.eventstore.schema import (
    CoreTables,
    create_core_tables_v1,
    define_core_tables,
)
from common.eventstore.store import (
    ANY_VERSION,
    EventStore,
    NewEvent,
    RecordedEvent,
    Transaction,
    as_utc,
    retrying,
    utcnow,
)

__all__ = [
    "Aggregate",
    "ANY_VERSION",
    "CoreTables",
    "EventStore",
    "NewEvent",
    "Projection",
    "RecordedEvent",
    "Transaction",
    "as_utc",
    "create_core_tables_v1",
    "define_core_tables",
    "retrying",
    "utcnow",
]
