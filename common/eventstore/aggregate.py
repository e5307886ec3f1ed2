"""Base of event-sourced aggregates (no I/O): state folded from one stream's events.

An aggregate class owns its stream's name: ``stream_prefix = "server"`` makes the stream of
server ``42`` ``server-42``. The event store's repository methods (``get``, ``save``,
``create`` on ``EventStore`` and on a ``Transaction``) use it, so no use case spells a
stream name.
"""

from dataclasses import fields


class Aggregate:
    """Subclasses (dataclasses whose first field is the stream's key and which have a
    ``version: int = 0`` field) set ``stream_prefix`` and define ``_on_<event type>(data)``
    for each event they fold. Command methods check invariants and return new ``NewEvent``
    objects; ``tx.save(aggregate, events)`` appends them at the version the aggregate was
    read at."""

    version = 0
    stream_prefix = None

    @classmethod
    def stream_of(cls, key):
        """The name of the stream that holds the aggregate with this key."""
        if not cls.stream_prefix:
            raise TypeError(f"{cls.__name__} sets no stream_prefix")
        return f"{cls.stream_prefix}-{key}"

    @property
    def stream_id(self):
        return self.stream_of(getattr(self, fields(self)[0].name))

    @classmethod
    def replay(cls, key, events):
        aggregate = cls(key)
        for event in events:
            aggregate.apply(event)
        return aggregate

    def apply(self, event):
        getattr(self, f"_on_{event.type}")(event.data)
        self.version = event.version

    @property
    def exists(self):
        return self.version > 0
