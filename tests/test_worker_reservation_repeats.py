"""A run's reservation requests: the downloader repeats the same exact total with every
progress report, and a repeat of the last granted request costs no transaction; anything
that could change the reservation still reaches the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.db import Database
from squall.jobs import service as jobs
from squall.metering.counters import get_counters
from squall.pipeline.run import store
from squall.pipeline.spec import JobSpec, PipelineEvents, PipelineResult
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.memory import MemoryStorage
from tests.support.helpers import KeyFactory, drain
from tests.test_worker_logic import job, make_worker, submit


def test_repeated_requests_skip_the_database_and_changes_do_not(
    client: TestClient,
    make_key: KeyFactory,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resized: list[tuple[int, bool]] = []
    real = jobs.resize_job_reservation

    def counting(session: object, claimed: object, expected: int, *, shrink: bool = True) -> bool | None:
        resized.append((expected, shrink))
        return real(session, claimed, expected, shrink=shrink)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "resize_job_reservation", counting)
    seen: list[int] = []
    key, key_id = make_key()

    def reserved() -> int:
        with db.read() as session:
            return int(get_counters(session, key_id).reserved_bytes)

    def pipeline(spec: JobSpec, workdir: Path, storage: Storage, events: PipelineEvents) -> PipelineResult:
        events.step("Downloading")
        for _ in range(3):  # progress reports of a known total
            assert events.need_bytes(5000, exact=True)
        seen.append(reserved())
        assert events.need_bytes(5000)  # at least 5000: covered by the exact 5000 just granted
        assert events.need_bytes(3000)  # a smaller estimate, which may not shrink: kept at 5000
        seen.append(reserved())
        assert events.need_bytes(3000, exact=True)  # exact: shrinks, though 3000 was just granted
        assert events.need_bytes(3000, exact=True)  # the same again: nothing to change
        seen.append(reserved())
        output = workdir / "out.mp4"
        output.write_bytes(b"x" * 3000)
        key_name = store(storage, output, "out.mp4", spec.job_id)
        return PipelineResult(output_key=key_name, file_size=3000, downloaded_bytes=3000, duration_seconds=1.0,
                              width=None, height=None, title="t")  # fmt: skip

    job_id = submit(client, key)
    assert drain(make_worker(settings, db, MemoryStorage(), pipeline)) == 1
    assert job(client, key, job_id)["status"] == "Completed"
    assert resized == [(5000, True), (3000, False), (3000, True)]  # one per change
    assert seen == [5000, 5000, 3000]
    assert reserved() == 0  # released at completion
