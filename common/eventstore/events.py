"""What the domain layer emits: ``NewEvent``, an event about to be appended (no I/O, no
database: domain modules import this, never the store)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended: its type (a past-tense fact) and its data."""

    type: str
    data: dict = field(default_factory=dict)
