"""The verification after a copy (and ``--verify-only`` later): every table's row count and
checksum, every key's counters, source against target, and ``squall usage verify``'s
checks on the target. Anything different fails the copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from squall.audit.usage import Report, verify
from squall.dbcopy.tables import TableSum, table_sum, tables
from squall.metering.models import KeyCounters

Counters = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class TableCheck:
    name: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_checksum) == (self.target_rows, self.target_checksum)


@dataclass
class Comparison:
    tables: list[TableCheck] = field(default_factory=list)
    counter_differences: list[dict[str, Any]] = field(default_factory=list)
    target_audit: Report = field(default_factory=Report)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and not self.counter_differences and not self.target_audit.drift

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tables": [{**t.__dict__, "ok": t.ok} for t in self.tables],
            "counter_differences": self.counter_differences,
            "usage_verify": self.target_audit.as_dict(),
        }

    def as_text(self) -> str:
        lines = [f"{'table':<22} {'source rows':>12} {'target rows':>12}  checksum"]
        for t in self.tables:
            same = "same" if t.source_checksum == t.target_checksum else (
                f"DIFFERS ({t.source_checksum} != {t.target_checksum})")  # fmt: skip
            lines.append(f"{t.name:<22} {t.source_rows:>12} {t.target_rows:>12}  {same}")
        lines += [
            f"key {d['key_id']} counter {d['counter']}: source {d['source']}, target {d['target']}"
            for d in self.counter_differences
        ]
        lines.append(f"usage verify on the target: {self.target_audit.as_text()}")
        lines.append(
            "the copy matches the source" if self.ok else "DIFFERENCES FOUND: the copy does not match"
        )
        return "\n".join(lines)


def key_counters(conn: Connection) -> Counters:
    columns = [c for c in KeyCounters.__table__.columns if c.name != "key_id"]
    return {
        row.key_id: {c.name: getattr(row, c.name) for c in columns}
        for row in conn.execute(select(KeyCounters.__table__))
    }


def table_sums(conn: Connection, batch_rows: int) -> dict[str, TableSum]:
    return {table.name: table_sum(conn, table, batch_rows) for table in tables()}


def compare(
    source_sums: dict[str, TableSum], source_counters: Counters, target: Connection, *, batch_rows: int
) -> Comparison:
    """``source_*`` read from the source's snapshot; ``target`` inside one target snapshot."""
    result = Comparison()
    target_sums = table_sums(target, batch_rows)
    for name, source in source_sums.items():
        copied = target_sums[name]
        result.tables.append(TableCheck(name, source.rows, copied.rows, source.checksum, copied.checksum))
    target_counters = key_counters(target)
    for key_id in sorted(set(source_counters) | set(target_counters)):
        mine, theirs = source_counters.get(key_id, {}), target_counters.get(key_id, {})
        for counter in sorted(set(mine) | set(theirs)):
            if mine.get(counter) != theirs.get(counter):
                result.counter_differences.append(
                    {
                        "key_id": key_id,
                        "counter": counter,
                        "source": mine.get(counter),
                        "target": theirs.get(counter),
                    }
                )
    result.target_audit = verify(Session(bind=target))
    return result
