"""A key's own storage: the request bodies of ``/user/{s3,blob,gcs,oss,bucket}`` and the
``storage`` object of ``POST /jobs``, checked, verified against the bucket, and sealed.

Object keys in a customer bucket are ``{folder_prefix}{base_folder}/{folder}/{name}.{ext}``."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from squall.errors import InvalidInput
from squall.pipeline.urlguard import UrlPolicy, check_url
from squall.storage.base import Storage
from squall.storage.customer import CustomerS3, reason, verify_within
from squall.validation import validated

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
_SAFE_FOLDER = re.compile(r"^[A-Za-z0-9._\-/]*$")
MESSAGES = {
    "s3": "S3 storage configured successfully",
    "blob": "Azure Blob storage configured successfully",
    "gcs": "Google Cloud Storage configured successfully",
    "oss": "Alibaba OSS storage configured successfully",
}
LEGACY_MESSAGE = "Bucket configuration updated successfully"


def _folder(value: str, what: str) -> str:
    if not _SAFE_FOLDER.match(value) or ".." in value or value.startswith("/"):
        raise ValueError(
            f"{what} may hold letters, digits, '.', '_', '-' and '/', not start with '/' or hold '..'"
        )
    return value


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder_prefix: str = Field("", max_length=200)
    base_folder: str = Field("videos", max_length=100)

    @field_validator("folder_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _folder(value.strip(), "folder_prefix")

    @field_validator("base_folder")
    @classmethod
    def _base(cls, value: str) -> str:
        return _folder(value.strip().strip("/") or "videos", "base_folder")

    @property
    def layout_root(self) -> str:
        """Where this configuration's objects go: ``{folder_prefix}{base_folder}``."""
        return f"{self.folder_prefix}{self.base_folder}"


class S3Body(_Common):
    provider: Literal["s3"] = "s3"
    endpoint: Text
    bucket: Text
    region: Text = "auto"
    access_key: Text
    secret_key: Text

    def s3_fields(self) -> dict[str, str]:
        region = "us-east-1" if self.region == "auto" and "amazonaws.com" in self.endpoint else self.region
        return {"endpoint": self.endpoint, "bucket": self.bucket, "region": region,
                "access_key": self.access_key, "secret_key": self.secret_key}  # fmt: skip


class OssBody(_Common):
    provider: Literal["oss"] = "oss"
    endpoint: Text
    bucket: Text
    access_key_id: Text
    access_key_secret: Text

    def s3_fields(self) -> dict[str, str]:
        host = self.endpoint.split("//", 1)[-1].split(".", 1)[0]  # oss-cn-hangzhou.aliyuncs.com
        region = host.removeprefix("oss-") if host.startswith("oss-") else "us-east-1"
        return {"endpoint": self.endpoint, "bucket": self.bucket, "region": region,
                "access_key": self.access_key_id, "secret_key": self.access_key_secret}  # fmt: skip


class BlobBody(_Common):
    provider: Literal["blob"] = "blob"
    account_name: Text
    container: Text
    account_key: str | None = None
    sas_token: str | None = None
    account_url: str | None = None  # sovereign clouds, gateways, Azurite

    @model_validator(mode="after")
    def _one_secret(self) -> BlobBody:
        if bool(self.account_key) == bool(self.sas_token):
            raise ValueError("Either account_key or sas_token must be provided" if not self.account_key
                             else "Give account_key or sas_token, not both")  # fmt: skip
        return self

    @property
    def bucket(self) -> str:
        return self.container

    @property
    def endpoint(self) -> str | None:
        return self.account_url


class GcsBody(_Common):
    provider: Literal["gcs"] = "gcs"
    project_id: Text
    bucket: Text
    service_account_json: str = Field(min_length=2, max_length=32768)
    endpoint: str | None = None  # S3-style gateways, emulators

    @field_validator("service_account_json")
    @classmethod
    def _json(cls, value: str) -> str:
        text = value.strip()
        if not text.startswith("{"):
            try:
                text = base64.b64decode(text, validate=True).decode()
            except ValueError:
                raise ValueError(
                    "service_account_json must be the key file's JSON, or that JSON in Base64"
                ) from None
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValueError("service_account_json is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("service_account_json must be a JSON object")
        return text


StorageBody = S3Body | OssBody | BlobBody | GcsBody
BODIES: dict[str, type[StorageBody]] = {"s3": S3Body, "oss": OssBody, "blob": BlobBody, "gcs": GcsBody}


def parse_request_storage(raw: dict[str, Any]) -> StorageBody:
    """The ``storage`` object of ``POST /jobs``: ``provider`` picks the body's shape."""
    provider = raw.get("provider")
    if provider not in BODIES:
        raise InvalidInput("storage.provider must be one of: s3, blob, gcs, oss")
    return validated(BODIES[str(provider)], raw, where="storage")


def guard_for(policy: UrlPolicy) -> Any:
    def guard(url: str) -> None:
        check_url(url, policy, what="endpoint")

    return guard


class CustomerBucket(Storage, Protocol):
    provider: str

    def verify(self, prefix: str) -> None: ...


def open_bucket(body: StorageBody, policy: UrlPolicy) -> CustomerBucket:
    """The provider's backend; the guard checks the endpoint here, before any traffic."""
    guard = guard_for(policy)
    if isinstance(body, BlobBody):
        from squall.storage.azure_blob import AzureBlobStorage

        return AzureBlobStorage(body.model_dump(), guard)
    if isinstance(body, GcsBody):
        from squall.storage.gcs import GcsStorage

        return GcsStorage(body.model_dump(), guard)
    return CustomerS3(body.s3_fields(), guard, provider=body.provider)


def _describer(provider: str) -> Callable[[BaseException], str]:
    if provider == "blob":
        from squall.storage.azure_blob import azure_reason

        return azure_reason
    if provider == "gcs":
        from squall.storage.gcs import gcs_reason

        return gcs_reason
    if provider == "oss":  # the reference's OSS wording: "Credential validation failed: AccessDenied"
        return lambda exc: reason(exc).replace("Access Denied", "AccessDenied")
    return reason


def verify(body: StorageBody, policy: UrlPolicy) -> None:
    """Refuse an endpoint the URL rules forbid, then write, read back and delete a small file
    within ``VERIFY_SECONDS``; raises a 400 in the reference's words."""
    bucket = open_bucket(body, policy)
    label = "Credential validation failed" if body.provider == "oss" else "Verification failed"
    verify_within(lambda: bucket.verify(body.folder_prefix), label=label, describe=_describer(body.provider))
