"""The ``storage`` object of ``POST /jobs`` and ``/jobs/bulk``: that request's jobs store
into the bucket it names instead of the key's configuration. Its credentials are verified
at submission, sealed with the jobs, never put in the job's options (so never in a job or
webhook payload) and erased when each job ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from squall.keys.storage_config import StorageBody, parse_request_storage, verify
from squall.keys.storage_service import add_request_storage, bind_jobs, storage_box
from squall.pipeline.urlguard import UrlPolicy
from squall.settings import Settings

Create = Callable[[Session, int], dict[str, Any]]


def take_storage(raw: dict[str, Any] | None) -> StorageBody | None:
    """The parsed ``storage`` object (a 400 naming the bad field), or None."""
    return parse_request_storage(raw) if raw is not None else None


def verify_storage(body: StorageBody | None, policy: UrlPolicy) -> None:
    if body is not None:
        verify(body, policy)


def job_ids_of(answer: dict[str, Any]) -> list[str]:
    if "job_id" in answer:
        return [answer["job_id"]]
    return list(answer.get("episode_jobs") or answer.get("job_ids") or [])


def binding(create: Create, key_id: str, body: StorageBody | None, settings: Settings) -> Create:
    """``create``, then each new job bound to its bucket: the request's, else the key's own
    configuration, else none (the operator's storage)."""

    def create_and_bind(session: Session, now: int) -> dict[str, Any]:
        answer = create(session, now)
        backend_id = None
        if body is not None:
            box = storage_box(settings.resolved_secret_key())
            backend_id = add_request_storage(session, key_id, body, box, now=now)
        bind_jobs(session, key_id, job_ids_of(answer), backend_id)
        return answer

    return create_and_bind
