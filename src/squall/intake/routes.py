"""POST /jobs and POST /jobs/bulk."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from squall.api.deps import ClockDep, DatabaseDep, ReadTx, SettingsDep
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
    key: CurrentKey, reader: ReadTx, database: DatabaseDep, settings: SettingsDep, clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> Submission:  # fmt: skip
    return Submission(key, settings, clock=clock, reader=reader, admissions=group_commit(database),
                      idempotency_key=idempotency_key)  # fmt: skip


SubmissionDep = Annotated[Submission, Depends(submission_dep)]
JOBS_SUMMARY = "Create a job, or a batch for a feed or playlist URL"
BULK_SUMMARY = "Create up to 100 jobs with shared options, as one batch"


@router.post("/jobs", response_model=None, summary=JOBS_SUMMARY, responses=RESPONSES)
def create_job(options: JobOptions, submission: SubmissionDep) -> JSONResponse:
    return _answer(*submit(options, submission))


@router.post("/jobs/bulk", response_model=None, summary=BULK_SUMMARY, responses=RESPONSES)
def create_bulk(body: BulkRequest, submission: SubmissionDep) -> JSONResponse:
    return _answer(*submit_bulk(body, submission))
