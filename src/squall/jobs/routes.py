"""HTTP routes for jobs (Tornado-compatible): status, lists, cancel, retry, file delete,
metadata, and the dashboard's job table. (Submission: ``squall/intake/routes.py``.)"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from squall.api.deps import ClockDep, Limit, Offset, ReadTx, SettingsDep, WriteTx
from squall.api.openapi import ErrorBody
from squall.api.routing import TransactionalRoute
from squall.clock import DAY_MS
from squall.jobs import live, queries, service
from squall.jobs.queries import STATUS_FILTERS
from squall.jobs.service import Admission
from squall.jobs.views import job_detail, job_links, job_page
from squall.keys.auth import CurrentKey
from squall.keys.cookies import cookie_box, load_cookies
from squall.keys.storage_routes import PickerDep
from squall.keys.storage_service import bind_jobs
from squall.pipeline.metadata import fetch_metadata
from squall.pipeline.urlguard import check_url, url_policy
from squall.pipeline.ytdlp_config import downloader_config
from squall.settings import Settings
from squall.validation import URL_FIELD_SCHEMA

# Routes return plain dicts with ``response_model=None``: FastAPI would otherwise re-validate
# every response against ``dict[str, Any]`` in the thread pool, for nothing.
router = APIRouter(tags=["jobs"], route_class=TransactionalRoute)
METADATA_TIMEOUT_SECONDS = 60.0


class WebhookStatus(Protocol):
    """How GET /jobs/{id} learns the delivery of the job's final webhook
    (``app.state.webhook_status``, wired by ``app.py``), without importing that domain."""

    def __call__(self, session: Session, job_id: str) -> dict[str, Any] | None: ...


def admission(settings: Settings) -> Admission:
    return Admission(settings.default_reservation_bytes, settings.max_attempts)


# Either spelling: "completed", or "Completed" as the API writes it.
StatusFilter = Annotated[
    str | None,
    Query(description="Only jobs in this status.", json_schema_extra={
        "enum": sorted(STATUS_FILTERS | {status.capitalize() for status in STATUS_FILTERS})}),
]  # fmt: skip


@router.get("/jobs", response_model=None, summary="List jobs, newest first")
def list_jobs(
    key: CurrentKey, tx: ReadTx, limit: Limit = 20, offset: Offset = 0, status: StatusFilter = None
) -> dict[str, Any]:
    jobs, total, _ = queries.list_jobs(tx.session, key.id, status=status, limit=limit, offset=offset)
    return job_page(jobs, total=total, limit=limit, offset=offset)  # total ignores the filter


@router.get("/jobs/{job_id}", response_model=None, summary="Job status and details")
def get_job(
    job_id: str, key: CurrentKey, tx: ReadTx, settings: SettingsDep, picker: PickerDep, clock: ClockDep,
    request: Request,
) -> dict[str, Any]:  # fmt: skip
    job = service.get_job(tx.session, key.id, job_id)
    links = job_links(job, lambda: picker.for_job_or_none(tx.session, job.id), public_url=settings.public_url,
                      secret=settings.resolved_secret_key(), now_s=clock.now_ms() // 1000)  # fmt: skip
    webhook_status: WebhookStatus = request.app.state.webhook_status
    return job_detail(job, links=links, webhook=webhook_status(tx.session, job.id))


class MetadataRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=4096, json_schema_extra=URL_FIELD_SCHEMA)


@router.post("/metadata", response_model=None, summary="What is known about a URL, without downloading it")
def metadata(body: MetadataRequest, key: CurrentKey, settings: SettingsDep, tx: ReadTx) -> dict[str, Any]:
    policy = url_policy(settings)
    check_url(body.url.strip(), policy, what="url")
    cookies = load_cookies(tx.session, key.id, cookie_box(settings.resolved_secret_key()))
    tx.finish()  # the read ends before the (slow) extraction
    return fetch_metadata(body.url.strip(), policy=policy, socket_timeout=settings.socket_timeout_seconds,
                          timeout=METADATA_TIMEOUT_SECONDS, downloader=downloader_config(settings),
                          cookies=cookies)  # fmt: skip


@router.delete("/jobs/{job_id}", response_model=None, summary="Cancel a waiting or running job")
def cancel_job(job_id: str, key: CurrentKey, tx: WriteTx, clock: ClockDep) -> dict[str, Any]:
    job = service.cancel_job(tx.session, key.id, job_id, now=clock.now_ms())
    return {"message": "Job cancelled successfully", "job_id": job.id}


@router.post(
    "/jobs/{job_id}/stop", response_model=None, summary="End a live recording and keep what it recorded",
    responses={409: {"model": ErrorBody, "description": "The job is not recording a live stream"}},
)  # fmt: skip
def stop_recording(job_id: str, key: CurrentKey, tx: WriteTx, clock: ClockDep) -> dict[str, Any]:
    job = live.request_stop(tx.session, key.id, job_id, now=clock.now_ms())
    return {"message": "The recording is stopping; what was recorded will be processed and stored",
            "job_id": job.id}  # fmt: skip


@router.delete("/jobs/{job_id}/file", response_model=None, summary="Delete a job's stored output")
def delete_file(
    job_id: str, key: CurrentKey, tx: WriteTx, picker: PickerDep, clock: ClockDep
) -> dict[str, Any]:
    storage = picker.for_deleting(tx.session, job_id)  # the bucket the objects are in
    deleted = service.clear_output(tx.session, key.id, job_id, now=clock.now_ms())
    for object_key in deleted:  # before the commit: if this fails, the job keeps its keys
        if storage is not None:  # None: a request's bucket whose credentials were erased
            storage.delete(object_key)
    return {"message": "File deleted successfully", "job_id": job_id, "deleted_key": deleted[0],
            "deleted_keys": deleted}  # fmt: skip


@router.post("/jobs/{job_id}/retry", response_model=None, summary="Retry a failed job as a new job")
def retry_job(
    job_id: str, key: CurrentKey, reader: ReadTx, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    # DNS may have changed since the first submission; checked before the write begins.
    url = service.get_job(reader.session, key.id, job_id).url
    reader.finish()
    check_url(url, url_policy(settings), what="url")
    new_id = service.retry_job(tx.session, key, job_id, now=clock.now_ms(), admission=admission(settings))
    bind_jobs(tx.session, key.id, [new_id])  # the key's storage now; a request's storage is not kept
    return {"job_id": new_id, "original_job_id": job_id, "message": "Job re-queued successfully"}


@router.get("/dashboard/jobs", response_model=None, summary="Jobs for the dashboard table")
def dashboard_jobs(
    key: CurrentKey,
    tx: ReadTx,
    limit: Limit = 50,
    offset: Offset = 0,
    status: StatusFilter = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the URL or stored name.")] = None,
) -> dict[str, Any]:
    rows, _, matching = queries.list_jobs(
        tx.session, key.id, status=status, limit=limit, offset=offset, search=q
    )
    return job_page(rows, total=matching, limit=limit, offset=offset)  # total matches the filter


@router.get(
    "/dashboard/failures", response_model=None, summary="The commonest failure reasons of the last 7 days"
)
def dashboard_failures(key: CurrentKey, tx: ReadTx, clock: ClockDep) -> dict[str, Any]:
    return {"reasons": queries.failure_reasons(tx.session, key.id, since=clock.now_ms() - 7 * DAY_MS)}
