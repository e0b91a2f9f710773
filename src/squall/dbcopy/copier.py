"""The copy itself: every table from one snapshot of the source into the target, in one
target transaction (a failed copy leaves the target empty), in foreign-key order, streamed
in batches so memory holds one batch whatever the table's size."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text

from squall.dbcopy.tables import TableSum, count_rows, insert_of, rows_of, tables

# Called with a table's name and row count when it starts, then with the rows just copied.
Progress = Callable[[str, int], None]


def copy_tables(
    source: Connection, target: Connection, *, batch_rows: int, started: Progress, copied: Progress
) -> dict[str, TableSum]:
    """Copy every row; returns what was read from each table (rows and checksum)."""
    read: dict[str, TableSum] = {}
    for table in tables():
        started(table.name, count_rows(source, table))
        summed = TableSum()
        insert = insert_of(table)
        for batch in rows_of(source, table, batch_rows):
            target.execute(insert, [row._asdict() for row in batch])
            summed.add(batch)
            copied(table.name, len(batch))
        read[table.name] = summed
    advance_sequences(target)
    return read


_OWNED_SEQUENCES = text("""
    SELECT seq.relname AS sequence, tab.relname AS "table", col.attname AS "column"
    FROM pg_class seq
    JOIN pg_depend dep ON dep.objid = seq.oid AND dep.deptype IN ('a', 'i')
    JOIN pg_class tab ON tab.oid = dep.refobjid
    JOIN pg_attribute col ON col.attrelid = tab.oid AND col.attnum = dep.refobjsubid
    JOIN pg_namespace ns ON ns.oid = seq.relnamespace
    WHERE seq.relkind = 'S' AND ns.nspname = current_schema()
""")


def advance_sequences(target: Connection) -> list[str]:
    """Move every sequence owned by a column (serial or identity) past the largest copied
    value, so the next generated id does not collide with a copied one. Squall's own ids are
    UUIDs today; this keeps the copy right for any integer id a later table brings."""
    quote = target.dialect.identifier_preparer.quote
    advanced = []
    for sequence, table, column in target.execute(_OWNED_SEQUENCES).all():
        largest = target.execute(text(f"SELECT max({quote(column)}) FROM {quote(table)}")).scalar()
        if largest is not None:
            target.execute(text("SELECT setval(:sequence, :value)"),
                           {"sequence": quote(sequence), "value": int(largest)})  # fmt: skip
            advanced.append(sequence)
    return advanced
