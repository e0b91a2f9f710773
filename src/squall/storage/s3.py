"""Any S3-compatible bucket as storage (AWS S3, MinIO, Garage, R2, …) through boto3.

Small files go up in one PUT with ``If-None-Match: *``, so "do not overwrite" is decided by
the bucket itself, atomically; large files use multipart uploads (boto3's transfer manager),
preceded by an existence check. Every upload carries a CRC32 checksum the server verifies.

Faults (5xx, throttling, resets, stalls) are retried by botocore's standard mode, within
``max_attempts`` and the timeouts. Each upload carries a token in its metadata: a retry whose
first try landed but lost its answer meets its own object (a 412) and knows it is done."""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from squall.errors import StorageError
from squall.storage.base import CHUNK, ByteStream
from squall.units import MB

SINGLE_PUT_MAX = 64 * MB
PART = 8 * MB
PRECONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict")
NOT_FOUND = ("404", "NoSuchKey", "NotFound")
PUT_TOKEN = "squall-put"  # x-amz-meta-squall-put: which put() call wrote the object


class _Taken(Exception):
    """The key already exists (a conditional PUT's 412)."""


class _Missing(Exception):
    """No object under the key (a 404)."""


def _why(exc: Exception) -> str:
    """A boto failure in a few words (no traceback, no request dump)."""
    if isinstance(exc, ClientError):
        error, meta = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        tries = int(meta.get("RetryAttempts") or 0) + 1
        said = f"{error.get('Code') or 'an error'}" + (f" (HTTP {status})" if status else "")
        return f"the bucket answered {said}" + (f" after {tries} attempts" if tries > 1 else "")
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return "the bucket did not answer in time (timeout), after retries"
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError)):
        return "the connection to the bucket failed or was reset, after retries"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextmanager
def s3_errors(action: str, bucket: str) -> Iterator[None]:
    """The one place boto's exceptions become Squall's ``StorageError`` (or the two answers a
    caller acts on: the key is taken, the key is missing)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in PRECONDITION_FAILED:
            raise _Taken() from None
        if code in NOT_FOUND:
            raise _Missing() from None
        raise StorageError(f"S3 bucket '{bucket}': {action} failed: {_why(exc)}") from None
    except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: e.g. a failed multipart upload
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc  # s3transfer wraps it
        raise StorageError(f"S3 bucket '{bucket}': {action} failed: {_why(cause)}") from None


class S3Storage:
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "auto",
        transfer: TransferConfig | None = None,
        timeouts: tuple[float, float] | None = None,
        max_attempts: int = 5,
    ) -> None:
        """``timeouts``: (connect, read) seconds; a customer's bucket gets short ones.
        ``max_attempts``: tries of one request in all, the first included."""
        self.bucket = bucket
        config = Config(
            s3={"addressing_style": addressing_style},  # "path" for MinIO/Garage-style servers
            signature_version="s3v4",
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            **({"connect_timeout": timeouts[0], "read_timeout": timeouts[1]} if timeouts else {}),
            # Only when required: several S3-compatible servers reject the newer default checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        # 8 MB parts, boto3's own default: a 200 MB upload's last round is shorter (25 parts on
        # 10 threads, 10/10/5, against 13 of 16 MB, 10/3), 45-100 ms sooner against moto_server
        # (docs/BENCHMARKS.md, "Pipeline"). download_file reads in ranges of the same size.
        # Past 10,000 parts (80 GB) boto3 makes the parts larger.
        self.transfer = transfer or TransferConfig(
            multipart_threshold=SINGLE_PUT_MAX, multipart_chunksize=PART
        )

    def put(self, source: Path, key: str, *, overwrite: bool) -> bool:
        token = uuid.uuid4().hex
        try:
            self._put(source, key, overwrite=overwrite, token=token)
            return True
        except _Taken:  # someone's object, or this call's own first try whose answer was lost
            return self._written_by(key, token)
        except _Missing:
            raise StorageError(f"S3 bucket '{self.bucket}': upload of {key} failed: no such bucket") from None
        except StorageError:
            if self._written_by(key, token):  # the last answer was lost, not the object
                return True
            raise

    def _put(self, source: Path, key: str, *, overwrite: bool, token: str) -> None:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        extra = {"ChecksumAlgorithm": "CRC32", "ContentType": content_type, "Metadata": {PUT_TOKEN: token}}
        with s3_errors(f"upload of {key}", self.bucket):
            if not overwrite and source.stat().st_size <= self.transfer.multipart_threshold:
                with source.open("rb") as body:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
                return
            if not overwrite and self.exists(key):
                raise _Taken()
            # On failure the transfer manager aborts the multipart upload (no parts left behind).
            self.client.upload_file(str(source), self.bucket, key, Config=self.transfer, ExtraArgs=extra)

    def _written_by(self, key: str, token: str) -> bool:
        """Whether the object under ``key`` is the one the put() holding ``token`` wrote."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError):
            return False  # unknown: the caller treats the upload as not done
        return bool(head.get("Metadata", {}).get(PUT_TOKEN) == token)

    def delete(self, key: str) -> None:
        try:
            with s3_errors(f"delete of {key}", self.bucket):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        except (_Missing, _Taken):  # S3 answers 204 for a missing key: anything else is a failure
            raise StorageError(f"S3 delete of {key} failed: the bucket refused it") from None

    def size(self, key: str) -> int | None:
        try:
            with s3_errors(f"lookup of {key}", self.bucket):
                head = self.client.head_object(Bucket=self.bucket, Key=key)
        except (_Missing, _Taken):
            return None
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, filename: str, expires_seconds: int) -> str | None:
        """A GET link valid for ``expires_seconds`` that downloads as ``filename``."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=expires_seconds,
            )
        )

    def fetch(self, key: str, target: Path) -> None:
        try:
            with s3_errors(f"download of {key}", self.bucket):
                self.client.download_file(self.bucket, key, str(target), Config=self.transfer)
        except (_Missing, _Taken):
            raise StorageError(f"S3 download of {key} failed: no such object") from None

    def read_range(self, key: str, start: int, end: int) -> ByteStream:
        """One GetObject with ``Range: bytes=start-(end-1)``; the body is read as it arrives."""
        try:
            with s3_errors(f"ranged read of {key}", self.bucket):
                answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        except (_Missing, _Taken):
            raise StorageError(f"S3 ranged read of {key} failed: no such object") from None
        body = answer["Body"]
        return ByteStream(_chunks_of(body, f"ranged read of {key}", self.bucket), body.close)

    def listing(self) -> Iterator[tuple[str, int]]:
        try:
            with s3_errors(f"listing of {self.bucket}", self.bucket):
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                    for item in page.get("Contents", []):
                        yield item["Key"], int(item["Size"])
        except (_Missing, _Taken):
            raise StorageError(f"S3 listing of {self.bucket} failed: no such bucket") from None


def _chunks_of(body: Any, action: str, bucket: str) -> Iterator[bytes]:
    with s3_errors(action, bucket):  # a connection lost mid-body is a storage error too
        yield from body.iter_chunks(CHUNK)
