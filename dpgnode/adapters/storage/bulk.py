"""Batched statements for the writer's flush: driver SQL with SQLAlchemy's own bind processors.

Core's ``executemany`` builds a parameter dictionary and runs every bind processor per row
in Python; for the few hundred rows a group-commit batch writes, that costs more than the
database itself. A :class:`BulkStatement` renders its SQL once per dialect and converts rows
with exactly the processors Core would apply (``TypeEngine.dialect_impl(d).bind_processor(d)``),
so the stored values are identical, then hands the rows to the driver's ``executemany``
through ``Connection.exec_driver_sql``, which still wraps driver exceptions in SQLAlchemy's
(the writer's ``translate`` is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table

_Processor = Callable[[Any], Any]
_Converter = Callable[[Sequence[Any]], tuple[Any, ...]]


def placeholder(dialect: Dialect) -> str:
    """The driver's positional placeholder: ``?`` (sqlite3) or ``%s`` (psycopg)."""
    return "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"


class BulkStatement:
    """``INSERT`` of ``columns`` or ``UPDATE ... SET columns WHERE key = ?`` on one table.

    Rows are tuples in the order of ``columns`` (then ``key`` for an update).
    """

    def __init__(self, table: Table, columns: Sequence[str], *, key: str | None = None) -> None:
        self._table = table
        self._columns = tuple(columns)
        self._key = key
        self._prepared: dict[str, tuple[str, _Converter | None]] = {}

    def _prepare(self, dialect: Dialect) -> tuple[str, _Converter | None]:
        quote = dialect.identifier_preparer.quote
        mark = placeholder(dialect)
        names = [*self._columns, *([self._key] if self._key else [])]
        # Only quoted identifiers from the table metadata and placeholders are interpolated.
        table = quote(self._table.name)
        if self._key is None:
            columns = ", ".join(quote(c) for c in names)
            marks = ", ".join(mark for _ in names)
            sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
        else:
            sets = ", ".join(f"{quote(c)} = {mark}" for c in self._columns)
            sql = f"UPDATE {table} SET {sets} WHERE {quote(self._key)} = {mark}"  # noqa: S608
        processors: list[tuple[int, _Processor]] = []
        for index, name in enumerate(names):
            column_type = self._table.c[name].type
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors.append((index, processor))
        return sql, _converter(processors)

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Run the statement once per row, in one driver ``executemany``."""
        if not rows:
            return
        prepared = self._prepared.get(conn.dialect.name)
        if prepared is None:
            prepared = self._prepared[conn.dialect.name] = self._prepare(conn.dialect)
        sql, convert = prepared
        params = [convert(row) for row in rows] if convert else [tuple(row) for row in rows]
        conn.exec_driver_sql(sql, params)


def _converter(processors: list[tuple[int, _Processor]]) -> _Converter | None:
    if not processors:
        return None

    def convert(row: Sequence[Any]) -> tuple[Any, ...]:
        values = list(row)
        for index, processor in processors:
            values[index] = processor(values[index])
        return tuple(values)

    return convert
