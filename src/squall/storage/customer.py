"""A key's own bucket (S3-compatible or Alibaba OSS) as a ``Storage``.

The customer supplies the endpoint, so every request is checked by ``guard`` just before it
is sent (each resolved address; the same rules as source URLs), timeouts are short and
retries few: a slow or broken customer bucket costs its own jobs time, never the worker.
Errors are re-worded in the customer's terms ("Access Denied", "NoSuchBucket", "timeout").

OSS goes through its S3-compatible API with boto3 rather than ``oss2``: one tested code path
(multipart with checksums, conditional PUT, presigning) and no second SDK to pin; OSS needs
virtual-hosted addressing, which boto3 does for any endpoint that is not a bare IP address."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from squall.errors import InvalidInput, StorageError, StorageRefused
from squall.storage.base import ByteStream
from squall.storage.s3 import S3Storage

VERIFY_KEY = "verify_credentials.txt"
VERIFY_BODY = b"squall storage verification\n"
VERIFY_SECONDS = 10.0  # the documented bound on a verification, whatever the endpoint does
CONNECT_SECONDS, READ_SECONDS = 4.0, 8.0
DENIED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden")
MISSING_BUCKET = ("NoSuchBucket",)
EndpointGuard = Callable[[str], None]  # raises UrlRefused for an endpoint it will not reach


class VerificationFailed(InvalidInput):
    """The credentials did not pass the upload / read back / delete check."""


def reason(exc: BaseException) -> str:
    """What went wrong, in the bucket owner's terms."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in DENIED:
            return "Access Denied"
        if code in MISSING_BUCKET:
            return "NoSuchBucket"
        return code or "the bucket refused the request"
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError)):
        return "could not connect to the endpoint"
    if isinstance(exc, InvalidInput):
        return exc.message
    return type(exc).__name__


def _addressing(endpoint: str) -> str:
    host = urlsplit(endpoint).hostname or ""
    loopback = host in ("localhost",) or host.replace(".", "").isdigit() or ":" in host
    return "path" if loopback else "virtual"


class CustomerS3(S3Storage):
    """An S3-compatible bucket that belongs to one API key."""

    def __init__(self, fields: Mapping[str, str], guard: EndpointGuard, *, provider: str = "s3") -> None:
        self.provider = provider
        endpoint = fields["endpoint"]
        guard(endpoint)
        region = fields.get("region") or ("us-east-1" if provider == "s3" else "oss")
        style = _addressing(endpoint) if provider == "oss" else "path"
        super().__init__(
            bucket=fields["bucket"],
            endpoint_url=endpoint,
            region=region,
            access_key_id=fields["access_key"],
            secret_access_key=fields["secret_key"],
            addressing_style=style,
            timeouts=(CONNECT_SECONDS, READ_SECONDS),
            max_attempts=3,  # the first try and two retries
        )
        self.client.meta.events.register("before-send", self._check_before_send)
        self._guard = guard

    def _check_before_send(self, request: Any, **_: Any) -> None:
        self._guard(request.url)  # at connect time: the name may resolve elsewhere by now

    def _customer_terms(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except StorageError as exc:
            cause = exc.__cause__ or exc.__context__  # boto's exception, behind s3_errors
            kinds = (ClientError, ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError,
                     ConnectionClosedError)  # fmt: skip
            if cause is not None and not isinstance(cause, kinds):  # the transfer manager wraps it
                cause = cause.__cause__ or cause
            known = isinstance(cause, kinds)
            said = reason(cause) if cause is not None and known else exc.message
            raise self._failure(said) from None
        except InvalidInput as exc:  # the guard refused the endpoint at connect time
            raise StorageRefused(f"Your {self.provider} storage: {exc.message}") from None

    def _failure(self, said: str) -> StorageError:
        message = f"Your {self.provider} storage (bucket '{self.bucket}') failed: {said}"
        refused = said in ("Access Denied", "NoSuchBucket")
        return StorageRefused(message) if refused else StorageError(message)

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        return bool(
            self._customer_terms(lambda: super(CustomerS3, self).put(source, key, overwrite=overwrite))
        )

    def delete(self, key: str) -> None:
        self._customer_terms(lambda: super(CustomerS3, self).delete(key))

    def size(self, key: str) -> int | None:
        found = self._customer_terms(lambda: super(CustomerS3, self).size(key))
        return None if found is None else int(found)

    def fetch(self, key: str, target: Path) -> None:
        self._customer_terms(lambda: super(CustomerS3, self).fetch(key, target))

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        stream: ByteStream = self._customer_terms(lambda: super(CustomerS3, self).read_range(key, start, end))
        return stream

    def listing(self) -> Iterator[tuple[str, int]]:
        items: list[tuple[str, int]] = self._customer_terms(lambda: list(super(CustomerS3, self).listing()))
        return iter(items)

    def verify(self, prefix: str) -> None:
        """Upload a small file, read it back, delete it; raw client calls so the cause shows."""
        key = f"{prefix}{VERIFY_KEY}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=VERIFY_BODY)
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if body != VERIFY_BODY:
            raise InvalidInput("the file read back differs from the one written")
        self.client.delete_object(Bucket=self.bucket, Key=key)


def verify_within(
    check: Callable[[], None],
    *,
    label: str,
    seconds: float | None = None,
    describe: Callable[[BaseException], str] = reason,
) -> None:
    """Run ``check`` with a hard deadline: a request never waits on a bucket longer than
    ``seconds``. A thread still blocked past it ends by its own socket timeouts."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            check()
            outcome.append(None)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=attempt, name="storage-verify", daemon=True)
    thread.start()
    thread.join(VERIFY_SECONDS if seconds is None else seconds)
    if not outcome:
        raise VerificationFailed(f"{label}: timeout")
    failure = outcome[0]
    if failure is not None:
        raise VerificationFailed(f"{label}: {describe(failure)}")
