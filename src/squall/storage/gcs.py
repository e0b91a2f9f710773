"""A key's own Google Cloud Storage bucket as a ``Storage``, through ``google-cloud-storage``
with the key's service account.

"Do not overwrite" is the service's precondition ``ifGenerationMatch=0``; files over 8 MB go
up as resumable uploads; every upload and download carries a CRC32C the library checks.
Every HTTP request (the API's and the token exchange's) passes ``guard`` first, and the
service account's ``token_uri`` is checked like the endpoint. ``s3_url`` is a V4 signed URL
made with the service account's key."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from squall.errors import InvalidInput, StorageError, StorageRefused
from squall.storage.base import ByteStream
from squall.storage.customer import CONNECT_SECONDS, READ_SECONDS, VERIFY_BODY, VERIFY_KEY

EndpointGuard = Callable[[str], None]
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
TIMEOUT = (CONNECT_SECONDS, READ_SECONDS)
RETRY = DEFAULT_RETRY.with_timeout(30.0)  # a broken customer bucket costs its job seconds, not minutes
RESUMABLE_CHUNK = 16 * 1024 * 1024  # a multiple of 256 KiB, as the API requires
RANGE_WINDOW = 4 * 1024 * 1024  # a ranged read asks for this much at a time (the memory it holds)


class _GuardedSession(requests.Session):
    def __init__(self, guard: EndpointGuard) -> None:
        super().__init__()
        self.guard = guard

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.guard(url.decode() if isinstance(url, bytes) else url)
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


class _GuardedAuthorizedSession(AuthorizedSession):
    def __init__(self, credentials: Any, guard: EndpointGuard) -> None:
        super().__init__(credentials, auth_request=Request(session=_GuardedSession(guard)))  # type: ignore[no-untyped-call]
        self.guard = guard

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.guard(url)
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)  # type: ignore[no-any-return,no-untyped-call]


def gcs_reason(exc: BaseException) -> str:
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, (auth_errors.RefreshError, api_errors.Forbidden, api_errors.Unauthorized)):
        return "Access Denied"
    if isinstance(exc, api_errors.NotFound):
        return "NoSuchBucket"
    if isinstance(exc, requests.ConnectionError):
        return "timeout" if "timed out" in str(exc).lower() else "could not connect to the endpoint"
    if isinstance(exc, InvalidInput):
        return exc.message
    if isinstance(exc, api_errors.GoogleAPICallError):
        return str(exc.message or exc.code)
    return type(exc).__name__


FAILURES = (api_errors.GoogleAPIError, auth_errors.GoogleAuthError, requests.RequestException, InvalidInput)


class GcsStorage:
    name = "gcs"
    provider = "gcs"

    def __init__(self, fields: Mapping[str, str | None], guard: EndpointGuard) -> None:
        info = json.loads(str(fields["service_account_json"]))
        self.endpoint = fields.get("endpoint") or DEFAULT_ENDPOINT
        guard(self.endpoint)
        try:
            self.credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        except (ValueError, KeyError) as exc:
            raise InvalidInput(f"service_account_json is not a service account key: {exc}") from None
        guard(self.credentials._token_uri)  # the token exchange goes where the file says
        session = _GuardedAuthorizedSession(self.credentials, guard)
        self.client = gcs.Client(project=str(fields["project_id"]), credentials=self.credentials, _http=session,
                                 client_options={"api_endpoint": self.endpoint})  # fmt: skip
        self.bucket = str(fields["bucket"])
        self.handle = self.client.bucket(self.bucket)

    def _failure(self, exc: BaseException) -> StorageError:
        said = gcs_reason(exc)
        message = f"Your gcs storage (bucket '{self.bucket}') failed: {said}"
        return StorageRefused(message) if said in ("Access Denied", "NoSuchBucket") else StorageError(message)

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        blob = self.handle.blob(
            key, chunk_size=RESUMABLE_CHUNK if source.stat().st_size > RESUMABLE_CHUNK else None
        )
        try:
            blob.upload_from_filename(str(source), content_type=mimetypes.guess_type(key)[0],
                                      if_generation_match=None if overwrite else 0, checksum="crc32c",
                                      timeout=TIMEOUT, retry=RETRY)  # fmt: skip
            return True
        except api_errors.PreconditionFailed:
            return False
        except FAILURES as exc:
            raise self._failure(exc) from None

    def delete(self, key: str) -> None:
        try:
            self.handle.blob(key).delete(timeout=TIMEOUT, retry=RETRY)
        except api_errors.NotFound:
            return
        except FAILURES as exc:
            raise self._failure(exc) from None

    def size(self, key: str) -> int | None:
        try:
            blob = self.handle.get_blob(key, timeout=TIMEOUT, retry=RETRY)
        except FAILURES as exc:
            raise self._failure(exc) from None
        return None if blob is None or blob.size is None else int(blob.size)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        return str(self.handle.blob(key).generate_signed_url(
            version="v4", expiration=timedelta(seconds=expires_seconds), method="GET",
            response_disposition=f'attachment; filename="{filename}"', api_access_endpoint=self.endpoint,
            credentials=self.credentials,
        ))  # fmt: skip

    def fetch(self, key: str, target: Path) -> None:
        try:
            self.handle.blob(key).download_to_filename(
                str(target), checksum="crc32c", timeout=TIMEOUT, retry=RETRY
            )
        except FAILURES as exc:
            raise self._failure(exc) from None

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        """``download_as_bytes(start, end)`` a window at a time (its ``end`` is inclusive)."""
        blob = self.handle.blob(key)

        def window(at: int) -> bytes:
            try:
                return bytes(blob.download_as_bytes(start=at, end=min(at + RANGE_WINDOW, end) - 1,
                                                    timeout=TIMEOUT, retry=RETRY))  # fmt: skip
            except FAILURES as exc:
                raise self._failure(exc) from None

        first = window(start)  # here, so a missing object fails before a response starts

        def chunks() -> Iterator[bytes]:
            yield first
            for at in range(start + RANGE_WINDOW, end, RANGE_WINDOW):
                yield window(at)

        return ByteStream(chunks())

    def listing(self) -> Iterator[tuple[str, int]]:
        try:
            items = [
                (blob.name, int(blob.size or 0))
                for blob in self.client.list_blobs(self.bucket, timeout=TIMEOUT, retry=RETRY)
            ]
        except FAILURES as exc:
            raise self._failure(exc) from None
        return iter(items)

    def verify(self, prefix: str) -> None:
        blob = self.handle.blob(f"{prefix}{VERIFY_KEY}")
        blob.upload_from_string(VERIFY_BODY, timeout=TIMEOUT, retry=None)
        if blob.download_as_bytes(timeout=TIMEOUT, retry=None) != VERIFY_BODY:
            raise InvalidInput("the file read back differs from the one written")
        blob.delete(timeout=TIMEOUT, retry=None)
