"""The Fastevo usage endpoints: date rules, zero-filled days, storage across a day boundary
(a controllable clock, not sleeps), transcoding buckets, and isolation between keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from squall.audit.usage import verify
from squall.clock import ManualClock
from squall.db import Database
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.server import MediaServer

DAY_MS = 86_400_000
D1 = int(datetime(2026, 3, 10, 22, 0, tzinfo=UTC).timestamp() * 1000)  # late on 10 March


class Clock(ManualClock):
    """The clock of the API and of the worker, moved by the test."""

    def __init__(self, client: TestClient, worker: Worker, start: int) -> None:
        super().__init__(start)
        client.app.state.clock = self  # type: ignore[attr-defined]
        worker.clock = self


def usage(client: TestClient, key: str, kind: str, start: str, end: str, status: int = 200) -> Any:
    response = client.get(
        f"/usage/{kind}", headers={"x-api-key": key}, params={"startDate": start, "endDate": end}
    )
    assert response.status_code == status, response.text
    return response.json()


def submit(client: TestClient, key: str, **fields: Any) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json=fields)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (None, "2026-01-02", "startDate is required (ISO 8601, e.g. 2023-09-01T00:00:00.000Z)"),
        ("2026-01-02", None, "endDate is required (ISO 8601, e.g. 2023-09-01T00:00:00.000Z)"),
        (None, None, "startDate and endDate are required (ISO 8601, e.g. 2023-09-01T00:00:00.000Z)"),
        (
            "yesterday",
            "2026-01-02",
            "startDate 'yesterday' is not an ISO 8601 date or date-time (e.g. 2023-09-01T00:00:00.000Z)",
        ),
        (
            "2026-01-02",
            "2026-13-01",
            "endDate '2026-13-01' is not an ISO 8601 date or date-time (e.g. 2023-09-01T00:00:00.000Z)",
        ),
        ("2026-01-05", "2026-01-04T23:59:59.999Z", "endDate (2026-01-04) is before startDate (2026-01-05)"),
        (
            "2024-01-01",
            "2024-12-31",
            "Invalid period: 366 days from startDate to endDate; at most 365 are allowed",
        ),
        ("0001-01-01", "0001-01-05", "startDate must be between the years 1970 and 2999"),
        (
            "2026-01-01",
            "9999-12-31T23:00:00-05:00",
            "endDate '9999-12-31T23:00:00-05:00' is not an ISO 8601 date or date-time (e.g. 2023-09-01T00:00:00.000Z)",
        ),
    ],
)
@pytest.mark.parametrize("kind", ["network", "storage", "transcoding"])
def test_every_date_rule_is_a_clear_400(
    client: TestClient, api_key: str, kind: str, start: str | None, end: str | None, message: str
) -> None:
    params = {k: v for k, v in (("startDate", start), ("endDate", end)) if v is not None}
    response = client.get(f"/usage/{kind}", headers={"x-api-key": api_key}, params=params)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_a_365_day_period_is_one_zero_filled_record_per_day_newest_first(
    client: TestClient, api_key: str
) -> None:
    days = usage(client, api_key, "network", "2025-01-01T00:00:00.000Z", "2025-12-31T23:59:59.999Z")
    assert len(days) == 365
    assert days[0] == {"collectionDate": "2025-12-31T00:00:00.000Z", "requests": 0, "bytesDownloaded": 0,
                       "cacheHitRate": 0}  # fmt: skip
    assert days[-1]["collectionDate"] == "2025-01-01T00:00:00.000Z"
    (one,) = usage(client, api_key, "storage", "2025-06-01", "2025-06-01")
    assert one == {"collectionDate": "2025-06-01T00:00:00.000Z", "numberOfObjects": 0, "bytesStored": 0}
    (day,) = usage(client, api_key, "transcoding", "2025-06-01", "2025-06-01")
    assert list(day["outputTranscodingMinutesByQuality"]) == [
        "144p",
        "240p",
        "360p",
        "480p",
        "720p",
        "1080p",
        "1440p",
        "2160p",
    ]
    assert list(day["outputTranscodingMinutesByPriority"]) == [str(p) for p in range(11)]
    assert set(day["outputTranscodingMinutesByQuality"].values()) == {0}


def test_a_delete_lowers_what_is_stored_from_its_day_on(
    client: TestClient,
    api_key: str,
    worker: Worker,
    media: MediaServer,
    db: Database,
) -> None:
    clock = Clock(client, worker, D1)
    first = submit(client, api_key, url=media.url("media/tiny.mp4"), filename="one")
    drain(worker)  # completes on 10 March
    size = client.get(f"/jobs/{first}", headers={"x-api-key": api_key}).json()["file_size"]
    clock.now = D1 + 4 * 3_600_000  # 02:00 on 11 March
    second = submit(client, api_key, url=media.url("media/tiny.mp4"), filename="two", download_thumbnail=True)
    drain(worker)
    thumb_and_media = client.get(f"/jobs/{second}", headers={"x-api-key": api_key}).json()
    assert client.delete(f"/jobs/{first}/file", headers={"x-api-key": api_key}).status_code == 200

    days = usage(client, api_key, "storage", "2026-03-09", "2026-03-11")
    second_bytes = days[0]["bytesStored"]
    assert second_bytes > thumb_and_media["file_size"]  # the thumbnail is stored (and counted) too
    assert days == [
        {"collectionDate": "2026-03-11T00:00:00.000Z", "numberOfObjects": 2, "bytesStored": second_bytes},
        {"collectionDate": "2026-03-10T00:00:00.000Z", "numberOfObjects": 1, "bytesStored": size},
        {"collectionDate": "2026-03-09T00:00:00.000Z", "numberOfObjects": 0, "bytesStored": 0},
    ]
    # A range that starts after the upload carries what was stored before it.
    assert usage(client, api_key, "storage", "2026-03-12", "2026-03-12")[0]["numberOfObjects"] == 2
    cumulative = client.get("/usage", headers={"x-api-key": api_key}).json()["storage_usage_bytes"]
    assert cumulative == size + second_bytes  # cumulative storage never goes down
    with db.read() as session:
        assert not verify(session).drift


def test_transcoding_minutes_land_in_their_quality_and_priority_buckets(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    Clock(client, worker, D1)
    ids = {
        "landscape": submit(client, api_key, url=media.url("media/landscape720.mp4"), priority=7),
        "portrait": submit(client, api_key, url=media.url("media/portrait.mp4"), priority=7),
        "tiny": submit(client, api_key, url=media.url("media/tiny.mp4"), priority=2),
        "audio": submit(client, api_key, url=media.url("media/tiny.mp4"), priority=0, audio_only=True),
    }
    drain(worker)
    minutes = {}
    for name, job_id in ids.items():
        job = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key}).json()
        assert job["status"] == "Completed", job
        minutes[name] = round(job["duration_seconds"] * 1000) / 60_000
    (day,) = usage(client, api_key, "transcoding", "2026-03-10", "2026-03-10")
    by_quality, by_priority = (
        day["outputTranscodingMinutesByQuality"],
        day["outputTranscodingMinutesByPriority"],
    )
    assert by_quality["720p"] == round(minutes["landscape"], 4)  # 1280x720
    assert by_quality["480p"] == round(minutes["portrait"], 4)  # 480x854: the shorter side
    assert by_quality["144p"] == round(minutes["tiny"], 4)  # 320x180: nearest is 144p
    assert sum(by_quality.values()) == pytest.approx(
        sum(minutes[n] for n in ("landscape", "portrait", "tiny")), abs=1e-3
    )
    assert by_priority["7"] == round(minutes["landscape"] + minutes["portrait"], 4)
    assert by_priority["2"] == round(minutes["tiny"], 4)
    assert by_priority["0"] == round(minutes["audio"], 4)  # audio has a priority, not a quality
    assert [by_priority[p] for p in ("1", "3", "4", "5", "6", "8", "9", "10")] == [0] * 8


def test_another_key_sees_none_of_it(
    client: TestClient, api_key: str, make_key: KeyFactory, worker: Worker, media: MediaServer,
) -> None:  # fmt: skip
    Clock(client, worker, D1)
    job_id = submit(client, api_key, url=media.url("media/tiny.mp4"))
    drain(worker)
    link = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key}).json()["download_url"]
    assert client.get(link.removeprefix("http://testserver")).status_code == 200
    other, _ = make_key("Other")
    for kind, field in (("network", "requests"), ("storage", "numberOfObjects")):
        assert usage(client, api_key, kind, "2026-03-10", "2026-03-10")[0][field] == 1
        assert all(day[field] == 0 for day in usage(client, other, kind, "2026-03-01", "2026-12-31"))
    (mine,) = usage(client, api_key, "transcoding", "2026-03-10", "2026-03-10")
    (theirs,) = usage(client, other, "transcoding", "2026-03-10", "2026-03-10")
    assert sum(mine["outputTranscodingMinutesByPriority"].values()) > 0
    assert sum(theirs["outputTranscodingMinutesByPriority"].values()) == 0


def test_verify_checks_the_new_rollups(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, db: Database
) -> None:
    submit(client, api_key, url=media.url("media/tiny.mp4"))
    drain(worker)
    with db.write() as session:
        session.execute(
            text("UPDATE daily_rollups SET quantity = quantity + 1 WHERE metric = 'storage.objects'")
        )
    with db.read() as session:
        drift = verify(session).drift
    assert [d["what"].split(" ", 2)[2] for d in drift] == ["storage.objects"]
