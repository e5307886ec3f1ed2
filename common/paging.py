"""API.md's list convention, checked once for every service: ``page`` from 1 to
``MAX_PAGE``, ``per_page`` from 1 to ``MAX_PER_PAGE`` (the gateway's ``PageQuerySchema``
applies the same bounds). ``MAX_PAGE`` keeps the database offset ``(page - 1) * per_page``
a 64-bit integer on every database (a larger one was a 500: issue 20).

Cursors: a newest-first log with a position answers ``position_cursor``s; a list ordered
by other columns answers a ``keyset_cursor`` of the last row's sort key (opaque to clients:
base64url of a JSON list), read back with ``keyset_values`` or, for the common
(time, id) order, ``time_and_id``."""

import base64
import json
from datetime import datetime

MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000


def page_problems(page, per_page):
    """The validation problems of a page request, by field ({} when it is fine); services
    merge them with their own filters' problems before raising ``ValidationFailed``."""
    problems = {}
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        problems["page"] = [f"A whole number from 1 to {MAX_PAGE:,}."]
    if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        problems["per_page"] = [f"From 1 to {MAX_PER_PAGE}."]
    return problems


def position_cursor(cursor):
    """The position a newest-first list's ``cursor`` names (None: no cursor); raises
    ``ValidationFailed`` naming ``cursor`` for anything that is not one of its
    ``next_cursor`` values. A cursor page reads the entries older than that position: the
    same cost however far back, unlike ``page``."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor.isdigit() or len(cursor) > 20:
        from common.errors import ValidationFailed

        raise ValidationFailed("Bad cursor.", fields={"cursor": ["The next_cursor of an earlier answer."]})
    return int(cursor)


def keyset_cursor(*values):
    """An opaque cursor holding a row's sort key ``values`` (JSON-able)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def keyset_values(cursor):
    """The values a ``keyset_cursor`` holds; ``ValueError`` for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise ValueError("not a cursor of this list") from None
    if not isinstance(values, list):
        raise ValueError("not a cursor of this list")
    return values


def time_and_id(cursor, max_id_length=64):
    """The ``(ISO time, id)`` a ``keyset_cursor(time, id)`` holds; ``ValueError`` else."""
    values = keyset_values(cursor)
    if len(values) != 2 or not isinstance(values[0], str) or not isinstance(values[1], str) \
            or not 1 <= len(values[1]) <= max_id_length:
        raise ValueError("not a cursor of this list")
    try:
        datetime.fromisoformat(values[0])
    except ValueError:
        raise ValueError("not a cursor of this list") from None
    return values[0], values[1]


def newest_first_page(rows, per_page, position_of):
    """``(page rows, next_cursor)`` from ``rows`` read with a limit of ``per_page + 1``
    (the extra row only tells whether an older page exists)."""
    more, rows = len(rows) > per_page, list(rows[:per_page])
    return rows, (str(position_of(rows[-1])) if more else None)
