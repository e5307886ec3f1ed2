"""The event store shared by every service: log, projections, outbox relay and inbox.

``Aggregate`` and ``NewEvent`` (what domain modules use) load nothing else; the store's
names (SQLAlchemy underneath) load on first use, so ``import services.<name>.domain``
stays free of the database and the broker (issue 22).
"""

import importlib

from common.eventstore.aggregate import Aggregate
from common.eventstore.events import NewEvent

_LAZY = {
    "Projection": "common.eventstore.projections",
    "CoreTables": "common.eventstore.schema",
    "create_core_tables_v1": "common.eventstore.schema",
    "define_core_tables": "common.eventstore.schema",
    "ANY_VERSION": "common.eventstore.store",
    "EventStore": "common.eventstore.store",
    "RecordedEvent": "common.eventstore.store",
    "Transaction": "common.eventstore.store",
    "as_utc": "common.eventstore.store",
    "retrying": "common.eventstore.store",
    "utcnow": "common.eventstore.store",
}

__all__ = ["Aggregate", "NewEvent", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
