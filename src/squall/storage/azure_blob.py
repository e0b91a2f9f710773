"""A key's own Azure Blob container as a ``Storage``, through ``azure-storage-blob``.

"Do not overwrite" is the service's own conditional PUT (``If-None-Match: *``); large files go
up as blocks (the SDK's chunked upload) with an MD5 per block the service checks. Every
request passes ``guard`` first (the endpoint's resolved addresses). ``s3_url`` is a read-only
SAS link minted with the account key; with a SAS token only, none is minted (the customer's
token is never handed out) and Squall's own link serves."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestTimeoutError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContentSettings, generate_blob_sas

from squall.errors import InvalidInput, StorageError, StorageRefused
from squall.storage.base import ByteStream
from squall.storage.customer import CONNECT_SECONDS, READ_SECONDS, VERIFY_BODY, VERIFY_KEY
from squall.units import MB

EndpointGuard = Callable[[str], None]
# The SDK logs each request at INFO (URLs, headers): never a customer's request in our logs.
logging.getLogger("azure").setLevel(logging.WARNING)


class _Guard(SansIOHTTPPolicy):  # type: ignore[type-arg]
    def __init__(self, guard: EndpointGuard) -> None:
        self.guard = guard

    def on_request(self, request: Any) -> None:
        self.guard(request.http_request.url)  # before each try: the name may resolve elsewhere by now


def azure_reason(exc: BaseException) -> str:
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 403:
        return "Access Denied"
    if isinstance(exc, HttpResponseError) and getattr(exc, "error_code", None):
        return str(getattr(exc, "error_code", ""))  # ContainerNotFound, AuthorizationPermissionMismatch, …
    if isinstance(exc, InvalidInput):
        return exc.message
    if isinstance(exc, AzureError):
        return "could not connect to the endpoint" if "connect" in str(exc).lower() else type(exc).__name__
    return type(exc).__name__


class AzureBlobStorage:
    name = "blob"
    provider = "blob"

    def __init__(self, fields: Mapping[str, str | None], guard: EndpointGuard) -> None:
        account = str(fields["account_name"])
        self.account_url = fields.get("account_url") or f"https://{account}.blob.core.windows.net"
        guard(self.account_url)
        self.account_name, self.account_key = account, fields.get("account_key")
        credential: Any = {"account_name": account, "account_key": self.account_key} if self.account_key \
            else fields["sas_token"]  # fmt: skip
        self.service = BlobServiceClient(
            self.account_url, credential=credential, per_retry_policies=[_Guard(guard)],
            connection_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS, retry_total=1,
            max_single_put_size=8 * MB, max_block_size=8 * MB,
            max_single_get_size=4 * MB, max_chunk_get_size=4 * MB,  # a ranged read holds one chunk
        )  # fmt: skip
        self.bucket = str(fields["container"])
        self.container = self.service.get_container_client(self.bucket)

    def _failure(self, exc: BaseException) -> StorageError:
        said = azure_reason(exc)
        message = f"Your blob storage (container '{self.bucket}') failed: {said}"
        refused = said in ("Access Denied", "ContainerNotFound", "AuthorizationPermissionMismatch")
        return StorageRefused(message) if refused or isinstance(exc, InvalidInput) else StorageError(message)

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        settings = ContentSettings(content_type=mimetypes.guess_type(key)[0] or "application/octet-stream")
        try:
            with source.open("rb") as body:
                self.container.upload_blob(key, body, overwrite=overwrite, validate_content=True,
                                           content_settings=settings, max_concurrency=2)  # fmt: skip
            return True
        except ResourceExistsError:
            return False
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None

    def delete(self, key: str) -> None:
        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            return  # already gone: what the caller wanted
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None

    def size(self, key: str) -> int | None:
        try:
            return int(self.container.get_blob_client(key).get_blob_properties().size)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                raise self._failure(exc) from None
            return None
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        if not self.account_key:
            return None
        token = generate_blob_sas(
            self.account_name, self.bucket, key, account_key=self.account_key,
            permission=BlobSasPermissions(read=True), expiry=datetime.now(UTC) + timedelta(seconds=expires_seconds),
            content_disposition=f'attachment; filename="{filename}"',
        )  # fmt: skip
        return f"{self.container.get_blob_client(key).url}?{token}"

    def fetch(self, key: str, target: Path) -> None:
        try:
            with target.open("wb") as out:
                self.container.download_blob(key, max_concurrency=2).readinto(out)
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        """``download_blob(offset, length)``: ranged GETs of one chunk each, read in turn."""
        try:
            download = self.container.download_blob(key, offset=start, length=end - start)
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from download.chunks()
            except (AzureError, InvalidInput) as exc:
                raise self._failure(exc) from None

        return ByteStream(chunks())

    def listing(self) -> Iterator[tuple[str, int]]:
        try:
            items = [(blob.name, int(blob.size)) for blob in self.container.list_blobs()]
        except (AzureError, InvalidInput) as exc:
            raise self._failure(exc) from None
        return iter(items)

    def verify(self, prefix: str) -> None:
        blob = self.container.get_blob_client(f"{prefix}{VERIFY_KEY}")
        blob.upload_blob(VERIFY_BODY, overwrite=True)
        if blob.download_blob().readall() != VERIFY_BODY:
            raise InvalidInput("the file read back differs from the one written")
        blob.delete_blob()
