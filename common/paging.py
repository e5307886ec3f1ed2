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
