"""Where a key's objects live when not in the operator's storage."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base, new_id


class StorageBackend(Base):
    """One customer bucket: a key's configuration (``per_request`` False; the one in use is
    ``active``) or the ``storage`` object of one request. The whole configuration, secrets
    included, is ``sealed`` (``squall.crypto``, purpose "storage", this row's id as context);
    the plain columns say only what ``GET /user/storage`` shows. A removed configuration
    keeps its row and secrets, so the files stored with it stay deletable; a request's
    secrets are erased (``sealed`` NULL) when its job ends."""

    __tablename__ = "storage_backends"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    provider: Mapped[str] = mapped_column(String(8))
    bucket: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str | None] = mapped_column(Text)
    folder_prefix: Mapped[str] = mapped_column(String(200), default="")
    base_folder: Mapped[str] = mapped_column(String(200), default="videos")
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    per_request: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    removed_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_storage_backends_key", "key_id", "active"),)


class JobStorage(Base):
    """A job whose objects go to (or are in) a customer bucket; jobs without a row use the
    operator's storage."""

    __tablename__ = "job_storage"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    backend_id: Mapped[str] = mapped_column(ForeignKey("storage_backends.id"))

    __table_args__ = (Index("ix_job_storage_backend", "backend_id"),)
