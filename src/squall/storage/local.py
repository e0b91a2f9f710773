"""A local folder as storage (the embedded default)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from squall.errors import StorageError
from squall.storage.base import CHUNK, ByteStream


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):  # keys are sanitised; this is the last line
            raise StorageError(f"Object key escapes the storage folder: {key}")
        return path

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
        try:  # the work file is finished and never written again: share it rather than copy
            os.link(source, staging)
        except OSError:  # another file system (or one without hard links): copy
            shutil.copyfile(source, staging)
        try:
            if overwrite:
                os.replace(staging, target)
                return True
            try:
                os.link(staging, target)  # atomic, and fails if the name is taken
            except FileExistsError:
                return False
            return True
        finally:
            staging.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        return None  # served by Squall at /files/... with its own signed link

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def fetch(self, key: str, target: Path) -> None:
        shutil.copyfile(self._path(key), target)

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        try:
            file = self._path(key).open("rb")
        except OSError as exc:
            raise StorageError(f"Read of {key} failed: {exc.strerror}") from None
        file.seek(start)

        def chunks(left: int) -> Iterator[bytes]:
            while left > 0 and (chunk := file.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk

        return ByteStream(chunks(end - start), file.close)

    def listing(self) -> Iterator[tuple[str, int]]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(".part"):
                yield path.relative_to(self.root).as_posix(), path.stat().st_size
