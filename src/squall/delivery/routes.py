"""GET/HEAD /files/{job_id}/{name}: the signed URL is the credential (no API key), so links
can be handed to players and browsers. Every request is metered for the job's key:
requests, body bytes sent, and hits (answered without reading the storage backend: from
the delivery cache in front of a remote bucket, or a 304). That usage is written once the
response has ended (bytes actually sent are known only then), in its own transaction: the
one write a GET makes, and it is the edge that makes it.

An object larger than the whole delivery cache is never read whole: its ranges are ranged
reads of the bucket and a full GET streams it (delivery/ranged.py); such requests are misses."""

from __future__ import annotations

import hashlib
import uuid
from email.utils import formatdate
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from squall.api.deps import MAX_INT64, ClockDep, DatabaseDep, ReadTx, SettingsDep
from squall.api.routing import TransactionalRoute
from squall.clock import Clock
from squall.db import Database
from squall.delivery import ranged
from squall.delivery.cache import DeliveryCache
from squall.delivery.metered import Metered
from squall.errors import NotAuthenticated, NotFound
from squall.jobs.models import Job, JobStatus
from squall.keys.storage_routes import PickerDep
from squall.metering import ledger
from squall.metering.ledger import Usage
from squall.storage.signing import verify

router = APIRouter(tags=["delivery"], route_class=TransactionalRoute)


async def delivery_cache_dep(request: Request) -> DeliveryCache:
    return request.app.state.delivery_cache  # type: ignore[no-any-return]


CacheDep = Annotated[DeliveryCache, Depends(delivery_cache_dep)]


@router.get(
    "/files/{job_id}/{name}", summary="Download a stored output (signed URL)", operation_id="get_file"
)
@router.head("/files/{job_id}/{name}", summary="Headers of a stored output", operation_id="head_file")
def get_file(
    job_id: str,
    name: str,
    expires: Annotated[int, Query(ge=0, le=MAX_INT64)],
    sig: str,
    request: Request,
    tx: ReadTx,
    db: DatabaseDep,
    settings: SettingsDep,
    picker: PickerDep,
    cache: CacheDep,
    clock: ClockDep,
) -> Response:
    now_s = clock.now_ms() // 1000
    if not verify(job_id, name, expires, sig, secret=settings.resolved_secret_key(), now_s=now_s):
        raise NotAuthenticated("This download link is invalid or has expired")
    job = tx.session.get(Job, job_id)
    keys = job.stored_keys if job is not None and job.status == JobStatus.COMPLETED else []
    key_id = job.key_id if job is not None else ""
    finished_at = (job.finished_at if job is not None else None) or 0
    storage = picker.for_job_or_none(tx.session, job_id) if keys else None  # the operator's, or the key's own
    tx.finish()  # not held open while a remote object is fetched or the body is sent
    key = next((k for k in keys if k.rsplit("/", 1)[-1] == name), None)
    if key is None or storage is None:
        raise NotFound("File not found")
    # Objects are never overwritten and a key belongs to one job: the pair names the bytes.
    etag = '"' + hashlib.sha256(f"{job_id}/{key}".encode()).hexdigest()[:32] + '"'
    headers = {"etag": etag, "cache-control": "private, max-age=86400",
               "last-modified": formatdate(finished_at / 1000, usegmt=True)}  # not the cache file's  # fmt: skip
    if _matches(request.headers.get("if-none-match"), etag):
        _meter(db, clock, key_id, job_id, sent=0, hit=True)
        return Response(status_code=304, headers=headers)

    path, hit, cleanup = storage.local_path(key), False, None
    # A key is unique within one bucket; a customer bucket's objects are cached under their job.
    cached_as = key if storage is picker.operator else f"{job_id}/{key}"
    if path is None:  # a remote bucket: through the delivery cache
        cached = cache.lookup(cached_as)
        if cached is not None:
            path, hit = cached, True
        else:
            size = cache.known_size(cached_as) or storage.size(key)
            if size is None:
                raise NotFound("File not found")
            too_large = size > cache.max_bytes  # the cache will not hold it: ranged reads of the bucket
            if too_large:
                cache.remember_size(cached_as, size)
            head = request.method == "HEAD"  # the GET's status and headers: they need the size only
            if head or too_large:
                read = partial(storage.read_range, key)
                inner = ranged.respond(request.headers, size, read, name=name, headers=headers, head=head)
                return Metered(inner, lambda sent: _meter(db, clock, key_id, job_id, sent=sent, hit=False))
            path, _ = cache.fill(cached_as, size, lambda target: storage.fetch(key, target))
            cleanup = None if path == cache.path_for(cached_as) else path
    elif not path.is_file():
        raise NotFound("File not found")
    inner = FileResponse(path, filename=name, headers=headers)  # ranges, multi-range, 416, HEAD
    return Metered(inner, lambda sent: _meter(db, clock, key_id, job_id, sent=sent, hit=hit), cleanup=cleanup)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _meter(db: Database, clock: Clock, key_id: str, job_id: str, *, sent: int, hit: bool) -> None:
    with db.write() as session:
        ledger.record(
            session,
            key_id=key_id,
            job_id=job_id,
            at_ms=clock.now_ms(),
            events=[
                Usage(ledger.DELIVERY_REQUESTS, 1),
                *([Usage(ledger.DELIVERY_BYTES, sent)] if sent else []),
                *([Usage(ledger.DELIVERY_HITS, 1)] if hit else []),
            ],
            dedupe_prefix=f"delivery:{uuid.uuid4().hex}",
        )
