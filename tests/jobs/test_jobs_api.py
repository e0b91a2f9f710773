from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from squall.app import create_app
from squall.db import Database
from squall.keys.storage_service import StoragePicker
from squall.settings import Settings
from squall.storage.local import LocalStorage
from tests.support.helpers import KeyFactory, refused_as_private

URL = "http://127.0.0.1:9/video.mp4"


def submit(client: TestClient, key: str, **fields: object) -> str:
    response = client.post("/jobs", headers={"x-api-key": key}, json={"url": URL, **fields})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"job_id"}
    return str(response.json()["job_id"])


def test_new_job_is_pending_with_millisecond_timestamps(client: TestClient, api_key: str) -> None:
    job_id = submit(client, api_key, filename="clip", folder="shows/a")
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key}).json()
    assert job["id"] == job_id and job["url"] == URL
    assert (job["status"], job["step"], job["error"], job["s3_url"]) == ("Pending", "Queued", None, None)
    assert job["folder"] == "shows/a" and job["filename"] == "clip" and job["priority"] == 5
    assert isinstance(job["created_at"], int) and job["created_at"] > 1_600_000_000_000
    assert job["finished_at"] is None


def test_polling_a_job_without_output_does_not_look_up_its_bucket(
    client: TestClient, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients poll GET /jobs/{id} while a job runs: only a completed job's links need the
    bucket (a query, and for a key's own bucket, opening its client)."""

    def no_lookup(*args: object) -> None:
        raise AssertionError("the job's bucket was looked up for a job without an output")

    monkeypatch.setattr(StoragePicker, "for_job_or_none", no_lookup)
    job_id = submit(client, api_key)
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key})
    assert job.status_code == 200 and job.json()["status"] == "Pending"


def test_list_is_newest_first_with_paging_and_filters(client: TestClient, api_key: str) -> None:
    ids = [submit(client, api_key) for _ in range(5)]
    headers = {"x-api-key": api_key}
    page = client.get("/jobs?limit=2&offset=1", headers=headers).json()
    assert [j["id"] for j in page["jobs"]] == [ids[3], ids[2]]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    client.delete(f"/jobs/{ids[0]}", headers=headers)
    failed = client.get("/jobs?status=failed", headers=headers).json()
    assert [j["id"] for j in failed["jobs"]] == [ids[0]]
    assert failed["total"] == 5  # GET /jobs: total ignores filters (Tornado)
    dashboard = client.get("/dashboard/jobs?status=pending", headers=headers).json()
    assert dashboard["total"] == 4 and dashboard["limit"] == 50  # dashboard: total matches the filter
    assert client.get("/jobs?limit=101", headers=headers).status_code == 400
    bad = client.get("/jobs?status=done", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("Invalid status filter 'done'")


def test_cancel_pending_job(client: TestClient, api_key: str) -> None:
    headers = {"x-api-key": api_key}
    job_id = submit(client, api_key)
    response = client.delete(f"/jobs/{job_id}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"message": "Job cancelled successfully", "job_id": job_id}
    job = client.get(f"/jobs/{job_id}", headers=headers).json()
    assert (job["status"], job["error"], job["error_type"]) == ("Failed", "Job cancelled by user", "error")
    again = client.delete(f"/jobs/{job_id}", headers=headers)
    assert again.status_code == 400
    assert again.json() == {"error": "Job cannot be cancelled (not in queue or already processing)"}
    usage = client.get("/usage", headers=headers).json()
    assert usage["storage_reserved_gb"] == 0 and usage["usage_count"] == 1
    stats = client.get("/dashboard/stats", headers=headers).json()
    assert (stats["failed_jobs"], stats["pending_jobs"], stats["total_jobs"]) == (1, 0, 1)


def test_retry_makes_a_new_counted_job_with_the_same_options(client: TestClient, api_key: str) -> None:
    headers = {"x-api-key": api_key}
    job_id = submit(client, api_key, format="mkv", filename="again", priority=8)
    refused = client.post(f"/jobs/{job_id}/retry", headers=headers)
    assert refused.status_code == 400 and refused.json() == {"error": "Only failed jobs can be retried"}
    client.delete(f"/jobs/{job_id}", headers=headers)
    response = client.post(f"/jobs/{job_id}/retry", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["original_job_id"] == job_id and body["message"] == "Job re-queued successfully"
    new = client.get(f"/jobs/{body['job_id']}", headers=headers).json()
    assert (new["format"], new["filename"], new["priority"], new["retry_of"]) == ("mkv", "again", 8, job_id)
    assert client.get(f"/jobs/{job_id}", headers=headers).json()["status"] == "Failed"  # original kept
    assert client.get("/usage", headers=headers).json()["usage_count"] == 2


def test_another_keys_job_is_404_everywhere(client: TestClient, make_key: KeyFactory) -> None:
    owner, _ = make_key("Owner")
    stranger, _ = make_key("Stranger")
    job_id = submit(client, owner)
    other = {"x-api-key": stranger}
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("DELETE", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/retry"),
        ("DELETE", f"/jobs/{job_id}/file"),
    ]:
        response = client.request(method, path, headers=other)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Job not found"}
    assert client.get("/jobs", headers=other).json()["jobs"] == []
    assert client.get("/dashboard/jobs", headers=other).json()["jobs"] == []
    assert client.get("/dashboard/stats", headers=other).json()["total_jobs"] == 0
    assert client.get(f"/jobs/{job_id}", headers={"x-api-key": owner}).json()["status"] == "Pending"


def test_unknown_and_malformed_job_ids_are_404(client: TestClient, api_key: str) -> None:
    for job_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key})
        assert response.status_code == 404 and response.json() == {"error": "Job not found"}


def test_unknown_route_has_an_error_body(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.mp4",
        "http://localhost:8080/a.mp4",
        "http://127.1/a.mp4",
        "http://2130706433/a.mp4",
        "http://0x7f000001/a.mp4",
        "http://[::1]/a.mp4",
        "http://[::ffff:127.0.0.1]/a.mp4",
        "http://10.0.0.8/a.mp4",
        "http://192.168.1.1/a.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/x",
        "http://app.localhost/x",
    ],
)
def test_private_addresses_are_refused_at_submission(
    settings: Settings, db: Database, storage: LocalStorage, api_key: str, url: str
) -> None:
    settings.allow_private_urls = False
    with TestClient(create_app(settings, db=db, storage=storage)) as strict:
        response = strict.post("/jobs", headers={"x-api-key": api_key}, json={"url": url})
    assert response.status_code == 400
    assert response.json() == {"error": refused_as_private("url")}


def test_retry_checks_the_url_again(
    client: TestClient, settings: Settings, db: Database, storage: LocalStorage, api_key: str
) -> None:
    job_id = submit(client, api_key)  # accepted while private addresses were allowed
    client.delete(f"/jobs/{job_id}", headers={"x-api-key": api_key})
    settings.allow_private_urls = False
    with TestClient(create_app(settings, db=db, storage=storage)) as strict:
        response = strict.post(f"/jobs/{job_id}/retry", headers={"x-api-key": api_key})
    assert response.status_code == 400
    assert response.json() == {"error": refused_as_private("url")}
