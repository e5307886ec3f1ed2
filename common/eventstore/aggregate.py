"""Base of event-sourced aggregates (no I/O): state folded from one stream's events."""


class Aggregate:
    """Subclasses (usually dataclasses whose first field is the stream's key and which have
    a ``version: int = 0`` field) define ``_on_<event type>(data)`` for each event they
    fold. Command methods check invariants and return new ``NewEvent`` objects; the caller
    appends them at ``version``."""

    version = 0

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
