"""Feeds and bulk requests become batches: admission, the paused workflow, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain, refused_as_private
from tests.support.server import MediaServer


def post(client: TestClient, key: str, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = client.post(path, headers={"x-api-key": key}, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def get(client: TestClient, key: str, path: str, status: int = 200) -> dict[str, Any]:
    response = client.get(path, headers={"x-api-key": key})
    assert response.status_code == status, response.text
    return dict(response.json())


def feed_url(media: MediaServer, *episodes: str, title: str = "show.rss") -> str:
    return media.url(f"feed/{title}?episodes={','.join(episodes)}")


def test_a_feed_becomes_a_batch_whose_episodes_all_complete(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    url = feed_url(media, "tiny.mp4", "long.mp4", "portrait.mp4")
    created = post(client, api_key, "/jobs", {"url": url, "folder": "show"})
    assert created["total_episodes"] == 3 and created["paused"] is False
    assert [e["title"] for e in created["episodes"]] == ["Episode 1", "Episode 2", "Episode 3"]
    assert [e["url"] for e in created["episodes"]] == [media.url(f"media/{n}") for n in
                                                       ("tiny.mp4", "long.mp4", "portrait.mp4")]  # fmt: skip
    assert created["episode_jobs"] == [e["job_id"] for e in created["episodes"]]
    assert get(client, api_key, "/usage")["usage_count"] == 3  # each episode is a job

    batch_id = created["batch_id"]
    assert get(client, api_key, f"/batch/{batch_id}")["status"] == "processing"
    assert drain(worker) == 3

    batch = get(client, api_key, f"/batch/{batch_id}")
    assert (batch["status"], batch["completed_episodes"], batch["failed_episodes"]) == ("completed", 3, 0)
    assert batch["episode_jobs"] == created["episode_jobs"] and batch["show_url"] == url
    for job_id in created["episode_jobs"]:
        job = get(client, api_key, f"/jobs/{job_id}")
        assert job["status"] == "Completed" and job["batch_id"] == batch_id
        assert job["s3_key"].startswith("show/Episode ")  # named after the episode's title
    stats = get(client, api_key, "/dashboard/stats")
    assert (stats["total_jobs"], stats["completed_jobs"]) == (3, 3)
    listed = get(client, api_key, "/dashboard/batches")
    assert [(b["id"], b["status"], b["total_episodes"]) for b in listed["batches"]] == [
        (batch_id, "completed", 3)
    ]


def test_a_batch_with_failures_ends_finished(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    created = post(client, api_key, "/jobs/bulk", {"jobs": [{"url": media.url("media/tiny.mp4")},
                                                           {"url": media.url("octet/notmedia.bin")}]})  # fmt: skip
    drain(worker)
    batch = get(client, api_key, f"/batch/{created['batch_id']}")
    assert (batch["status"], batch["completed_episodes"], batch["failed_episodes"]) == ("finished", 1, 1)
    assert batch["progress"] == 100.0


def test_a_paused_batch_is_renamed_then_started(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    created = post(client, api_key, "/jobs", {"url": feed_url(media, "tiny.mp4", "long.mp4"), "paused": True})
    batch_id, (first, second) = created["batch_id"], created["episode_jobs"]
    assert created["paused"] is True
    assert drain(worker) == 0  # nothing is queued while paused
    assert get(client, api_key, f"/batch/{batch_id}")["status"] == "paused"

    renamed = client.patch(f"/batch/{batch_id}/jobs", headers={"x-api-key": api_key}, json={"renames": [
        {"job_id": first, "filename": "01 - Introduction"},
        {"job_id": "00000000-0000-0000-0000-000000000000", "filename": "stray"},
        {"job_id": second, "filename": "///"},
    ]})  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert body["updated"] == 1 and len(body["errors"]) == 2
    assert "00000000-0000-0000-0000-000000000000" in body["errors"][0]

    started = post(client, api_key, f"/batch/{batch_id}/start", {})
    assert started == {"batch_id": batch_id, "started_jobs": 2, "status": "processing"}
    assert drain(worker) == 2
    assert get(client, api_key, f"/jobs/{first}")["s3_key"] == "01 - Introduction.mp4"
    assert get(client, api_key, f"/batch/{batch_id}")["status"] == "completed"

    again = post(client, api_key, f"/batch/{batch_id}/start", {}, status=400)
    assert again == {"error": "Batch is not paused (current status: completed)"}
    late = client.patch(f"/batch/{batch_id}/jobs", headers={"x-api-key": api_key},
                        json={"renames": [{"job_id": first, "filename": "x"}]})  # fmt: skip
    assert late.status_code == 400
    assert late.json() == {"error": "Batch is not paused. Only paused batches can be renamed."}


def test_cancelling_every_episode_of_a_paused_batch_ends_it_on_start(
    client: TestClient, api_key: str, media: MediaServer
) -> None:
    created = post(client, api_key, "/jobs", {"url": feed_url(media, "tiny.mp4"), "paused": True})
    client.delete(f"/jobs/{created['episode_jobs'][0]}", headers={"x-api-key": api_key})
    post(client, api_key, f"/batch/{created['batch_id']}/start", {})
    assert get(client, api_key, f"/batch/{created['batch_id']}")["status"] == "finished"


def test_paused_needs_a_feed(client: TestClient, api_key: str, media: MediaServer) -> None:
    refused = post(client, api_key, "/jobs", {"url": media.url("media/tiny.mp4"), "paused": True}, status=400)
    assert refused == {"error": "paused applies to feeds and playlists; this URL is a single video"}


def test_bulk_creates_one_batch_with_shared_options(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer
) -> None:
    items = [{"url": media.url("media/tiny.mp4"), "filename": f"clip {n}"} for n in range(3)]
    created = post(client, api_key, "/jobs/bulk", {"jobs": items, "folder": "bulk", "audio_only": True})
    assert set(created) == {"batch_id", "total_jobs", "job_ids"} and created["total_jobs"] == 3
    drain(worker)
    keys = sorted(get(client, api_key, f"/jobs/{j}")["s3_key"] for j in created["job_ids"])
    assert keys == ["bulk/clip 0.m4a", "bulk/clip 1.m4a", "bulk/clip 2.m4a"]
    assert get(client, api_key, "/usage")["usage_count"] == 3


def test_bulk_input_is_checked_whole_before_anything_is_created(
    client: TestClient, api_key: str, media: MediaServer
) -> None:
    one = {"url": media.url("media/tiny.mp4")}
    too_many = post(client, api_key, "/jobs/bulk", {"jobs": [one] * 101}, status=400)
    assert too_many == {"error": "jobs holds 101 items; at most 100 are allowed"}
    assert post(client, api_key, "/jobs/bulk", {"jobs": []}, status=400)["error"].startswith("jobs must")
    bad_item = post(client, api_key, "/jobs/bulk", {"jobs": [one, {"url": "ftp://x/y.mp4"}]}, status=400)
    assert bad_item["error"].startswith("jobs[1]: ") and "http" in bad_item["error"]
    bad_shared = post(client, api_key, "/jobs/bulk", {"jobs": [one], "format": "avi"}, status=400)
    assert "Invalid format 'avi'" in bad_shared["error"]
    post(client, api_key, "/jobs/bulk", {"jobs": [{"link": "x"}]}, status=400)
    assert post(client, api_key, "/jobs/bulk", {"jobs": [one] * 100})["total_jobs"] == 100
    assert get(client, api_key, "/usage")["usage_count"] == 100  # only the valid request counted


def test_a_batch_that_does_not_fit_the_quota_is_refused_whole(
    client: TestClient, make_key: KeyFactory, media: MediaServer
) -> None:
    # Each episode reserves the 1 MB its feed announces: a 3 MB quota fits three, not four.
    key, _ = make_key("Small", key_type="trial", storage_limit_bytes=3 * 1024**2)
    announced = "&lengths=" + ",".join([str(1024**2)] * 4)
    refused = post(client, key, "/jobs", {"url": feed_url(media, *["tiny.mp4"] * 4) + announced}, status=403)
    assert refused["error"] == "Storage quota exceeded"
    usage = get(client, key, "/usage")
    assert (usage["usage_count"], usage["storage_reserved_gb"]) == (0, 0.0)
    assert get(client, key, "/dashboard/batches")["batches"] == []
    three = feed_url(media, *["tiny.mp4"] * 3) + announced.removesuffix(f",{1024**2}")
    assert post(client, key, "/jobs", {"url": three})["total_episodes"] == 3


def test_another_keys_batch_is_not_found(
    client: TestClient, api_key: str, make_key: KeyFactory, media: MediaServer
) -> None:
    created = post(client, api_key, "/jobs", {"url": feed_url(media, "tiny.mp4"), "paused": True})
    other, _ = make_key("Other")
    batch_id = created["batch_id"]
    assert get(client, other, f"/batch/{batch_id}", status=404) == {"error": "Batch not found"}
    assert post(client, other, f"/batch/{batch_id}/start", {}, status=404) == {"error": "Batch not found"}
    patched = client.patch(f"/batch/{batch_id}/jobs", headers={"x-api-key": other}, json={"renames": []})
    assert patched.status_code == 404
    assert get(client, other, "/dashboard/batches")["batches"] == []
    assert get(client, api_key, "/batch/not-a-uuid", status=404) == {"error": "Batch not found"}


def test_a_feed_whose_entries_point_at_private_addresses_is_refused(
    client: TestClient, api_key: str, media: MediaServer, media_dir: Path
) -> None:
    """The feed is on an allowed private network (127.0.0.2); its episodes on loopback."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    settings.allow_private_urls, settings.allowed_private_networks = False, "127.0.0.2/32"
    with MediaServer(media_dir, host="127.0.0.2") as allowed:
        url = allowed.url(f"feed/show.rss?episodes=tiny.mp4&base={media.url('media/')}")
        refused = post(client, api_key, "/jobs", {"url": url}, status=400)
        assert refused == {"error": refused_as_private("An entry of this feed")}
        assert (
            post(client, api_key, "/jobs", {"url": allowed.url("feed/show.rss?episodes=tiny.mp4")})[
                "total_episodes"
            ]
            == 1
        )
    assert get(client, api_key, "/usage")["usage_count"] == 1
