"""Pick the storage backend named by the settings."""

from __future__ import annotations

from squall.errors import SquallError
from squall.settings import Settings
from squall.storage.base import Storage
from squall.storage.local import LocalStorage


def make_storage(settings: Settings) -> Storage:
    if settings.storage == "local":
        return LocalStorage(settings.storage_dir)
    raise SquallError("SQUALL_STORAGE=s3 is not available in this version yet; use local")
