"""GET /files/{job_id}/{name}: the signed URL is the credential (no API key), so links can be
handed to players and browsers. Range requests are answered by Starlette's FileResponse."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from squall.clock import now_ms
from squall.errors import NotFound, Unauthorized
from squall.http import DatabaseDep, SettingsDep, StorageDep
from squall.jobs.models import COMPLETED, Job
from squall.storage.signing import verify

router = APIRouter(tags=["delivery"])


@router.get("/files/{job_id}/{name}", summary="Download a stored output (signed URL)")
def get_file(
    job_id: str,
    name: str,
    expires: int,
    sig: str,
    db: DatabaseDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> Response:
    if not verify(job_id, name, expires, sig, secret=settings.resolved_secret_key(), now_s=now_ms() // 1000):
        raise Unauthorized("This download link is invalid or has expired")
    with db.read() as session:
        job = session.get(Job, job_id)
        keys = job.stored_keys if job is not None and job.status == COMPLETED else []
    key = next((k for k in keys if k.rsplit("/", 1)[-1] == name), None)
    if key is None:
        raise NotFound("File not found")
    path = storage.local_path(key)
    if path is not None:
        return FileResponse(path, filename=name)
    direct = storage.presigned_url(key, name, max(60, expires - now_ms() // 1000))
    if direct is None:
        raise NotFound("File not found")
    return RedirectResponse(direct, status_code=307)  # a remote bucket serves the bytes
