"""``/user/s3``, ``/user/blob``, ``/user/gcs``, ``/user/oss``, the legacy ``/user/bucket`` and
``GET /user/storage``: a key's own storage (reference §5). Credentials are verified against
the bucket before they are saved (within ``VERIFY_SECONDS``), sealed, and never returned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from squall.api.deps import ClockDep, ReadTx, SettingsDep, WriteTx
from squall.api.routing import TransactionalRoute
from squall.db.unit_of_work import UnitOfWork
from squall.errors import NotFound
from squall.keys.auth import CurrentKey
from squall.keys.storage_config import (
    LEGACY_MESSAGE,
    MESSAGES,
    BlobBody,
    GcsBody,
    OssBody,
    S3Body,
    StorageBody,
    verify,
)
from squall.keys.storage_service import StoragePicker, active_config, retire, save_config, shown, storage_box
from squall.pipeline.urlguard import url_policy
from squall.settings import Settings

router = APIRouter(tags=["storage"], route_class=TransactionalRoute)


def _configure(
    body: StorageBody, key_id: str, tx: UnitOfWork, settings: Settings, now: int, message: str
) -> dict[str, Any]:
    verify(body, url_policy(settings))
    save_config(tx.session, key_id, body, storage_box(settings.resolved_secret_key()), now=now)
    answer: dict[str, Any] = {
        "message": message,
        "provider": body.provider,
        "container_or_bucket": body.bucket,
    }
    if body.folder_prefix:
        answer["folder_prefix"] = body.folder_prefix
    return answer


def _remove(provider: str | None, key_id: str, tx: UnitOfWork, now: int) -> dict[str, Any]:
    if not retire(tx.session, key_id, now=now, provider=provider):
        raise NotFound("This key has no such storage configured")
    return {"message": "Storage configuration removed; new jobs use the managed storage"}


@router.post("/user/s3", response_model=None, summary="Use this S3-compatible bucket for this key's files")
def configure_s3(
    body: S3Body, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    return _configure(body, key.id, tx, settings, clock.now_ms(), MESSAGES["s3"])


@router.post("/user/bucket", response_model=None, summary="Legacy: configure an S3 bucket")
def configure_bucket(
    body: S3Body, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    return _configure(body, key.id, tx, settings, clock.now_ms(), LEGACY_MESSAGE)


@router.post("/user/oss", response_model=None, summary="Use this Alibaba OSS bucket for this key's files")
def configure_oss(
    body: OssBody, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    return _configure(body, key.id, tx, settings, clock.now_ms(), MESSAGES["oss"])


@router.post("/user/blob", response_model=None, summary="Use this Azure Blob container for this key's files")
def configure_blob(
    body: BlobBody, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    return _configure(body, key.id, tx, settings, clock.now_ms(), MESSAGES["blob"])


@router.post(
    "/user/gcs", response_model=None, summary="Use this Google Cloud Storage bucket for this key's files"
)
def configure_gcs(
    body: GcsBody, key: CurrentKey, tx: WriteTx, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    return _configure(body, key.id, tx, settings, clock.now_ms(), MESSAGES["gcs"])


def _deleter(provider: str | None):  # type: ignore[no-untyped-def]
    def remove(key: CurrentKey, tx: WriteTx, clock: ClockDep) -> dict[str, Any]:
        return _remove(provider, key.id, tx, clock.now_ms())

    return remove


for _path, _provider in (("s3", "s3"), ("bucket", "s3"), ("oss", "oss"), ("blob", "blob"), ("gcs", "gcs")):
    router.delete(f"/user/{_path}", response_model=None, summary=f"Remove this key's {_path} storage",
                  operation_id=f"remove_{_path}_storage")(_deleter(_provider))  # fmt: skip


@router.get("/user/storage", response_model=None, summary="This key's storage configuration, without secrets")
def get_storage(key: CurrentKey, tx: ReadTx, request: Request) -> dict[str, Any]:
    return shown(active_config(tx.session, key.id))


def picker_dep(request: Request) -> StoragePicker:
    """One picker per application, made on first use from its storage and settings."""
    state = request.app.state
    picker: StoragePicker | None = getattr(state, "storage_picker", None)
    if picker is None:
        settings: Settings = state.settings
        picker = StoragePicker(
            state.storage, storage_box(settings.resolved_secret_key()), url_policy(settings)
        )
        state.storage_picker = picker
    return picker


PickerDep = Annotated[StoragePicker, Depends(picker_dep)]
