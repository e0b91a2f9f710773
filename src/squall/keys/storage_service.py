"""Saving, showing and removing a key's storage configuration, binding jobs to a customer
bucket, and opening the bucket a job's objects are in. Secrets are sealed with
``squall.crypto`` (purpose "storage", the row's id as context) and opened only here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from squall.crypto import SealedSecretError, SecretBox
from squall.db.base import new_id, table_of
from squall.errors import SquallError, StorageRefused
from squall.keys.storage_config import BODIES, StorageBody, open_bucket
from squall.keys.storage_models import JobStorage, StorageBackend
from squall.pipeline.urlguard import UrlPolicy
from squall.storage.base import Storage

PURPOSE = "storage"
# Every admission asks for its key's active backend: one prebuilt Core statement, asked once
# per key per transaction (a group commit admits many requests of one key in one).
_BACKENDS = table_of(StorageBackend).c
_ACTIVE_ID = select(_BACKENDS.id).where(_BACKENDS.key_id == bindparam("k"), _BACKENDS.active.is_(True))
ACTIVE_IDS = "squall.storage.active_ids"  # session.info: key id -> its active backend's id


def storage_box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key, PURPOSE)


def _row(key_id: str, body: StorageBody, box: SecretBox, *, now: int, per_request: bool) -> StorageBackend:
    row = StorageBackend(key_id=key_id, provider=body.provider, bucket=body.bucket, endpoint=body.endpoint,
                         folder_prefix=body.folder_prefix, base_folder=body.base_folder,
                         per_request=per_request, active=not per_request, created_at=now)  # fmt: skip
    row.id = new_id()  # the seal is bound to it
    row.sealed = box.seal(body.model_dump_json().encode(), row.id)
    return row


def save_config(
    session: Session, key_id: str, body: StorageBody, box: SecretBox, *, now: int
) -> StorageBackend:
    """Make ``body`` the key's storage (one at a time): the earlier one is retired, not
    deleted, so the files stored with it stay deletable."""
    retire(session, key_id, now=now)
    row = _row(key_id, body, box, now=now, per_request=False)
    session.add(row)
    session.flush()
    return row


def retire(session: Session, key_id: str, *, now: int, provider: str | None = None) -> bool:
    session.info.pop(ACTIVE_IDS, None)
    query = update(StorageBackend).where(StorageBackend.key_id == key_id, StorageBackend.active.is_(True))
    if provider is not None:
        query = query.where(StorageBackend.provider == provider)
    return bool(session.execute(query.values(active=False, removed_at=now)).rowcount)  # type: ignore[attr-defined]


def active_config(session: Session, key_id: str) -> StorageBackend | None:
    return session.scalar(
        select(StorageBackend).where(StorageBackend.key_id == key_id, StorageBackend.active.is_(True))
    )


def shown(row: StorageBackend | None) -> dict[str, Any]:
    """``GET /user/storage``: the configuration without a secret."""
    if row is None:
        return {"provider": "managed", "configured": False}
    return {"provider": row.provider, "configured": True, "container_or_bucket": row.bucket,
            "endpoint": row.endpoint, "folder_prefix": row.folder_prefix, "base_folder": row.base_folder}  # fmt: skip


def add_request_storage(session: Session, key_id: str, body: StorageBody, box: SecretBox, *, now: int) -> str:
    row = _row(key_id, body, box, now=now, per_request=True)
    session.add(row)
    session.flush()
    return row.id


def active_backend_id(session: Session, key_id: str) -> str | None:
    """The key's configured bucket, read once per transaction (admission is the hot path)."""
    known: dict[str, str | None] = session.info.setdefault(ACTIVE_IDS, {})
    if key_id not in known:
        known[key_id] = session.scalar(_ACTIVE_ID, {"k": key_id})
    return known[key_id]


def bind_jobs(session: Session, key_id: str, job_ids: Iterable[str], backend_id: str | None = None) -> None:
    """New jobs store into the request's bucket, else the key's configured one, else (no
    row) the operator's storage."""
    if backend_id is None:
        backend_id = active_backend_id(session, key_id)
    if backend_id is not None:
        session.add_all(JobStorage(job_id=job_id, backend_id=backend_id) for job_id in job_ids)


def backend_of(session: Session, job_id: str) -> StorageBackend | None:
    return session.scalar(
        select(StorageBackend).join(JobStorage, JobStorage.backend_id == StorageBackend.id)
        .where(JobStorage.job_id == job_id)
    )  # fmt: skip


def erase_request_secrets(session: Session, job_id: str) -> None:
    """A job that ended keeps no credentials it was sent with (a retry sends them again)."""
    backend_id = select(JobStorage.backend_id).where(JobStorage.job_id == job_id).scalar_subquery()
    session.execute(
        update(StorageBackend)
        .where(StorageBackend.id == backend_id, StorageBackend.per_request.is_(True))
        .values(sealed=None)
    )


def on_job_ended(session: Session, event: Any) -> None:
    """``JobEnded`` subscriber (squall/subscriptions.py)."""
    erase_request_secrets(session, event.job_id)


def open_body(row: StorageBackend, box: SecretBox) -> StorageBody:
    if row.sealed is None:
        raise StorageRefused("The storage credentials sent with this job were erased when it ended; "
                             "send them again with a new request")  # fmt: skip
    try:
        data = json.loads(box.open(row.sealed, row.id))
    except SealedSecretError:
        raise StorageRefused(f"This key's {row.provider} storage credentials can no longer be read "
                             "(the server's secret key changed); configure the storage again") from None  # fmt: skip
    return BODIES[row.provider].model_validate(data)


class StoragePicker:
    """The bucket each job's objects are in: the operator's storage, or a customer bucket
    opened from its sealed configuration (clients cached per key configuration: a saved
    configuration never changes, a new one is a new row)."""

    def __init__(self, operator: Storage, box: SecretBox, policy: UrlPolicy) -> None:
        self.operator, self.box, self.policy = operator, box, policy
        self._open: dict[str, Storage] = {}
        self._lock = threading.Lock()

    def for_row(self, row: StorageBackend | None) -> Storage:
        if row is None:
            return self.operator
        if row.per_request:  # one job's bucket: opened for it, never cached (nothing to leak)
            return open_bucket(open_body(row, self.box), self.policy)
        with self._lock:
            found = self._open.get(row.id)
        if found is not None:
            return found
        bucket = open_bucket(open_body(row, self.box), self.policy)
        with self._lock:
            self._open[row.id] = bucket
        return bucket

    def for_job(self, session: Session, job_id: str) -> Storage:
        return self.for_row(backend_of(session, job_id))

    def for_deleting(self, session: Session, job_id: str) -> Storage | None:
        """Where to delete a job's objects; None when they are in a bucket sent with a request
        whose credentials were erased: the books forget them, the bucket's owner keeps them."""
        row = backend_of(session, job_id)
        if row is not None and row.per_request and row.sealed is None:
            return None
        return self.for_row(row)

    def for_job_or_none(self, session: Session, job_id: str) -> Storage | None:
        """``for_job``, or None when the bucket can no longer be opened (a request's erased
        credentials, a changed secret key): links are then left out, not an error."""
        try:
            return self.for_job(session, job_id)
        except SquallError:
            return None


def customer_folder(row: StorageBackend, folder: str | None) -> str:
    """The folder a job's objects get in a customer bucket: ``{folder_prefix}{base_folder}/{folder}``."""
    root = f"{row.folder_prefix}{row.base_folder}"
    return f"{root}/{folder}" if folder else root
