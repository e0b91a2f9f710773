"""Pick the storage backend named by the settings."""

from __future__ import annotations

from squall.errors import InvalidInput
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.local import LocalStorage


def make_storage(settings: Settings) -> Storage:
    if settings.storage == "local":
        return LocalStorage(settings.storage_dir)
    if not settings.s3_bucket:
        raise InvalidInput("SQUALL_STORAGE=s3 needs SQUALL_S3_BUCKET")
    from squall.storage.s3 import S3Storage

    return S3Storage(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        addressing_style=settings.s3_addressing_style,
        timeouts=(min(settings.s3_timeout_seconds, 10.0), settings.s3_timeout_seconds),
        max_attempts=settings.s3_max_attempts,
    )
