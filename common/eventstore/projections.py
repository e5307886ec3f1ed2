"""Projections: read models kept in step with the event log.

A projection owns some tables and has one ``when_<event type>(conn, event)`` method per
event type it follows. The store calls ``apply`` for every appended event inside the
append's transaction, and ``clear`` + ``apply`` for every event when rebuilding.
"""


class Projection:
    """Base class: subclasses set ``tables`` and define ``when_<type>`` methods."""

    tables = ()

    def handles(self, event_type):
        return callable(getattr(self, f"when_{event_type}", None))

    def apply(self, conn, event):
        handler = getattr(self, f"when_{event.type}", None)
        if handler is not None:
            handler(conn, event)

    def clear(self, conn):
        """Delete every row of this projection's tables (children first)."""
        for table in reversed(self.tables):
            conn.execute(table.delete())
