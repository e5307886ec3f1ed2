"""API.md's list convention, checked once for every service: ``page`` from 1 to
``MAX_PAGE``, ``per_page`` from 1 to ``MAX_PER_PAGE`` (the gateway's ``PageQuerySchema``
applies the same bounds). ``MAX_PAGE`` keeps the database offset ``(page - 1) * per_page``
a 64-bit integer on every database (a larger one was a 500: issue 20)."""

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


def newest_first_page(rows, per_page, position_of):
    """``(page rows, next_cursor)`` from ``rows`` read with a limit of ``per_page + 1``
    (the extra row only tells whether an older page exists)."""
    more, rows = len(rows) > per_page, list(rows[:per_page])
    return rows, (str(position_of(rows[-1])) if more else None)
