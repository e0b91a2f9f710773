"""Every table's rows as the copy reads and writes them, and an order-free checksum of them.

JSON columns travel as their stored text (cast to text on reading, back to JSON on writing):
decoding and re-encoding could change spacing or turn a SQL NULL into JSON ``null``. Values
are compared as Python values (a SQLite day string and a PostgreSQL date are both a
``date``). The checksum is a sum of per-row hashes, so two databases that order rows
differently (their collations differ) still agree, and no ORDER BY is needed to stream."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Insert, Row, Table, Text, bindparam, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from squall.models import Base

_MODULUS = 2**256


def tables() -> list[Table]:
    """Every table, parents before children (the order foreign keys allow inserting in)."""
    return list(Base.metadata.sorted_tables)


def _read_column(column: Any) -> ColumnElement[Any]:
    if isinstance(column.type, JSON):
        return cast(column, Text).label(column.name)
    return column  # type: ignore[no-any-return]


def rows_of(conn: Connection, table: Table, batch_rows: int) -> Iterator[Sequence[Row[Any]]]:
    """The table's rows in batches: a server-side cursor on PostgreSQL, SQLite's own stepping
    on SQLite, so memory holds one batch however large the table."""
    statement = select(*(_read_column(c) for c in table.columns))
    result = conn.execution_options(yield_per=batch_rows).execute(statement)
    yield from result.partitions()


def insert_of(table: Table) -> Insert:
    """An INSERT taking rows as ``rows_of`` reads them (JSON as text)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, JSON):
            values[column.name] = cast(bindparam(column.name, type_=Text), column.type)
        else:
            values[column.name] = bindparam(column.name, type_=column.type)
    return table.insert().values(values)


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@dataclass
class TableSum:
    rows: int = 0
    total: int = 0

    def add(self, batch: Sequence[Row[Any]]) -> None:
        for row in batch:
            digest = hashlib.sha256(repr(tuple(row)).encode()).digest()
            self.total = (self.total + int.from_bytes(digest)) % _MODULUS
        self.rows += len(batch)

    @property
    def checksum(self) -> str:
        return f"{self.total:064x}"[:16]


def table_sum(conn: Connection, table: Table, batch_rows: int) -> TableSum:
    summed = TableSum()
    for batch in rows_of(conn, table, batch_rows):
        summed.add(batch)
    return summed
