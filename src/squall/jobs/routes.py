"""HTTP routes for jobs (Tornado-compatible)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from squall.clock import now_ms
from squall.http import DatabaseDep, SettingsDep, StorageDep
from squall.jobs import intake, queries, service
from squall.jobs.intake import BulkRequest
from squall.jobs.options import JobOptions
from squall.jobs.views import job_detail, job_links, job_page
from squall.keys.auth import CurrentKey
from squall.pipeline.metadata import fetch_metadata
from squall.pipeline.urlguard import check_url
from squall.webhooks.outbox import delivery_view, latest_for_job

# Routes return plain dicts with ``response_model=None``: FastAPI would otherwise re-validate
# every response against ``dict[str, Any]`` in the thread pool, for nothing.
router = APIRouter(tags=["jobs"])
METADATA_TIMEOUT_SECONDS = 60.0


class ErrorBody(BaseModel):
    error: str


class QuotaBody(BaseModel):
    error: str
    limit_gb: str
    used_gb: str
    message: str


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retries with the same key and body return the first answer; no second job.",
    ),
]


def _answer(body: dict[str, Any], replayed: bool) -> JSONResponse:
    return JSONResponse(body, headers={"Idempotent-Replayed": "true"} if replayed else None)


@router.post(
    "/jobs",
    response_model=None,
    summary="Create a job, or a batch for a feed or playlist URL",
    responses={
        403: {"model": QuotaBody, "description": "Storage quota exceeded"},
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another request"},
    },
)
def create_job(
    options: JobOptions,
    key: CurrentKey,
    db: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _answer(*intake.submit(options, key, db, settings, idempotency_key))


@router.post(
    "/jobs/bulk",
    response_model=None,
    summary="Create up to 100 jobs with shared options, as one batch",
    responses={
        403: {"model": QuotaBody, "description": "Storage quota exceeded"},
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another request"},
    },
)
def create_bulk(
    body: BulkRequest,
    key: CurrentKey,
    db: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _answer(*intake.submit_bulk(body, key, db, settings, idempotency_key))


@router.get("/jobs", response_model=None, summary="List jobs, newest first")
def list_jobs(
    key: CurrentKey,
    db: DatabaseDep,
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0),
    status: str | None = None,
) -> dict[str, Any]:
    with db.read() as session:
        jobs, total, _ = queries.list_jobs(session, key.id, status=status, limit=limit, offset=offset)
        return job_page(jobs, total=total, limit=limit, offset=offset)  # total ignores the filter


@router.get("/jobs/{job_id}", response_model=None, summary="Job status and details")
def get_job(
    job_id: str, key: CurrentKey, db: DatabaseDep, settings: SettingsDep, storage: StorageDep
) -> dict[str, Any]:
    with db.read() as session:
        job = service.get_job(session, key.id, job_id)
        links = job_links(
            job,
            storage,
            public_url=settings.public_url,
            secret=settings.resolved_secret_key(),
            now_s=now_ms() // 1000,
        )
        webhook = delivery_view(latest_for_job(session, job.id))
        return job_detail(job, links=links, webhook=webhook)


class MetadataRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=4096)


@router.post("/metadata", response_model=None, summary="What is known about a URL, without downloading it")
def metadata(body: MetadataRequest, key: CurrentKey, settings: SettingsDep) -> dict[str, Any]:
    check_url(body.url.strip(), settings.url_policy, what="url")
    return fetch_metadata(
        body.url.strip(),
        policy=settings.url_policy,
        socket_timeout=settings.socket_timeout_seconds,
        timeout=METADATA_TIMEOUT_SECONDS,
    )


@router.delete("/jobs/{job_id}", response_model=None, summary="Cancel a waiting or running job")
def cancel_job(job_id: str, key: CurrentKey, db: DatabaseDep) -> dict[str, Any]:
    with db.write() as session:
        job = service.cancel_job(session, key.id, job_id, now=now_ms())
    return {"message": "Job cancelled successfully", "job_id": job.id}


@router.delete("/jobs/{job_id}/file", response_model=None, summary="Delete a job's stored output")
def delete_file(job_id: str, key: CurrentKey, db: DatabaseDep, storage: StorageDep) -> dict[str, Any]:
    with db.write() as session:
        deleted = service.clear_output(session, key.id, job_id, now=now_ms())
        for object_key in deleted:  # inside the transaction: if this fails, the job keeps its keys
            storage.delete(object_key)
    return {
        "message": "File deleted successfully",
        "job_id": job_id,
        "deleted_key": deleted[0],
        "deleted_keys": deleted,
    }


@router.post("/jobs/{job_id}/retry", response_model=None, summary="Retry a failed job as a new job")
def retry_job(job_id: str, key: CurrentKey, db: DatabaseDep, settings: SettingsDep) -> dict[str, Any]:
    with db.read() as session:  # DNS may have changed since the first submission
        check_url(service.get_job(session, key.id, job_id).url, settings.url_policy, what="url")
    with db.write() as session:
        new_id = service.retry_job(
            session,
            key,
            job_id,
            now=now_ms(),
            admission=intake.admission(settings),
        )
    return {"job_id": new_id, "original_job_id": job_id, "message": "Job re-queued successfully"}
