"""A page number too large for a database offset is a 400 naming ``page``, never a 500
(issue 20: ``page=9223372036854775808`` overflowed SQLite's INTEGER on every list)."""

import pytest
from marshmallow import ValidationError

from common.paging import MAX_PAGE, MAX_PER_PAGE, page_problems
from gateway.schemas import PageQuerySchema


@pytest.mark.parametrize("page", [0, MAX_PAGE + 1, 9223372036854775808])
def test_out_of_range_pages_are_refused_by_the_gateway_and_the_services(page):
    with pytest.raises(ValidationError) as refused:
        PageQuerySchema().load({"page": str(page)})
    assert "page" in refused.value.messages
    assert "page" in page_problems(page, 50)


def test_the_largest_page_still_fits_a_64_bit_offset():
    assert PageQuerySchema().load({"page": str(MAX_PAGE)})["page"] == MAX_PAGE
    assert page_problems(MAX_PAGE, MAX_PER_PAGE) == {}
    assert (MAX_PAGE - 1) * MAX_PER_PAGE < 2**63
