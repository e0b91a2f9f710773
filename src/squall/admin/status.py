"""``squall status``: the queue and workers view (``GET /admin/queue``) in a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _age(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def render(view: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]Queue[/bold]: {view['pending']} waiting, {view['processing']} running, "
        f"oldest wait {_age(view['oldest_wait_ms'])}, {view['claims_last_minute']} claims in the last minute"
    )
    priorities = Table("priority", "waiting", "running", "oldest wait", title="By priority")
    for row in view["by_priority"]:
        priorities.add_row(str(row["priority"]), str(row["pending"]), str(row["processing"]),
                           _age(row["oldest_wait_ms"]))  # fmt: skip
    console.print(priorities)
    keys = Table("key", "client", "waiting", "running", title="By key")
    for row in view["by_key"]:
        keys.add_row(row["key_id"], row["client_name"], str(row["pending"]), str(row["processing"]))
    console.print(keys)
    workers = Table("worker", "host", "pid", "jobs", "last heartbeat", "state", title="Workers")
    for w in view["workers"]:
        state = "alive" if w["alive"] else f"DEAD ({w['jobs']} leases held)"
        workers.add_row(w["id"], w["host"], str(w["pid"]), str(w["jobs"]),
                        f"{_age(w['last_heartbeat_ago_ms'])} ago", state)  # fmt: skip
    console.print(workers)
