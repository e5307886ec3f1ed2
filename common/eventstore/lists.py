"""Lists read newest first from a read model, by ``page`` or by keyset cursor.

``NewestFirst(table.c.created_at, table.c.item_id)`` orders a table's rows by a time and an
id, newest first (ties by id), and reads a page of them either at an offset (``page``) or
after the position a cursor names (``next_cursor`` of the page before: the same cost however
far back). The position is compared as a row, ``(time, id) < (?, ?)``, which SQLite and
PostgreSQL both turn into a range of an index on ``(…filters, time, id)`` (an OR of the two
columns would be filtered row by row instead).
"""

import sqlalchemy as sa

from common.paging import keyset_cursor, newest_first_page, time_and_id


class NewestFirst:
    def __init__(self, time_column, id_column):
        self.time_column, self.id_column = time_column, id_column
        self.table = time_column.table

    def order_by(self):
        return [self.time_column.desc(), self.id_column.desc()]

    def cursor_of(self, row):
        """The ``next_cursor`` that continues after ``row``."""
        return keyset_cursor(row[self.time_column.name], row[self.id_column.name])

    def position(self, cursor):
        """The ``(time, id)`` a cursor names (None for no cursor); ``ValueError`` for
        anything that is not a ``next_cursor`` of this list."""
        return None if cursor is None else time_and_id(cursor)

    def read(self, conn, where, page, per_page, position=None):
        """``(rows, total, next_cursor)`` of the rows matching ``where``."""
        query = sa.select(self.table).where(*where).order_by(*self.order_by()).limit(per_page + 1)
        if position is not None:
            query = query.where(sa.tuple_(self.time_column, self.id_column) < sa.tuple_(*position))
        else:
            query = query.offset((page - 1) * per_page)
        total = conn.execute(sa.select(sa.func.count()).select_from(self.table).where(*where)).scalar_one()
        rows, next_cursor = newest_first_page(conn.execute(query).mappings().all(), per_page, self.cursor_of)
        return rows, total, next_cursor
