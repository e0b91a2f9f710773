"""POST /jobs and POST /jobs/bulk."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from squall.api.deps import get_app_settings, get_clock, get_database
from squall.api.openapi import ErrorBody, QuotaBody
from squall.api.routing import TransactionalRoute
from squall.intake.group_commit import group_commit
from squall.intake.submit import BulkRequest, Submission, submit, submit_bulk
from squall.jobs.options import JobOptions
from squall.keys.auth import CurrentKey

router = APIRouter(tags=["jobs"], route_class=TransactionalRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retries with the same key and body return the first answer; no second job.",
    ),
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": QuotaBody, "description": "Storage quota exceeded"},
    409: {"model": ErrorBody, "description": "Idempotency-Key reused with another request"},
}


def _answer(body: dict[str, Any], replayed: bool) -> JSONResponse:
    return JSONResponse(body, headers={"Idempotent-Replayed": "true"} if replayed else None)


async def submission_dep(
    request: Request, key: CurrentKey, idempotency_key: IdempotencyKey = None
) -> Submission:
    """Everything else from the app's state directly: each dependency FastAPI resolves costs
    more than an admission's own work in its transaction."""
    database = get_database(request)
    return Submission(key, get_app_settings(request), clock=get_clock(request), database=database,
                      admissions=group_commit(database), idempotency_key=idempotency_key)  # fmt: skip


SubmissionDep = Annotated[Submission, Depends(submission_dep)]
JOBS_SUMMARY = "Create a job, or a batch for a feed or playlist URL"
BULK_SUMMARY = "Create up to 100 jobs with shared options, as one batch"


@router.post("/jobs", response_model=None, summary=JOBS_SUMMARY, responses=RESPONSES)
async def create_job(options: JobOptions, submission: SubmissionDep) -> JSONResponse:
    return _answer(*await submit(options, submission))


@router.post("/jobs/bulk", response_model=None, summary=BULK_SUMMARY, responses=RESPONSES)
async def create_bulk(body: BulkRequest, submission: SubmissionDep) -> JSONResponse:
    return _answer(*await submit_bulk(body, submission))
