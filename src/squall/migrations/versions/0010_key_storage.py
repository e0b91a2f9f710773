"""each key's own storage: customer buckets and the jobs bound to them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_backends",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("folder_prefix", sa.String(length=200), nullable=False),
        sa.Column("base_folder", sa.String(length=200), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("per_request", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_storage_backends_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_backends")),
    )
    op.create_index("ix_storage_backends_key", "storage_backends", ["key_id", "active"])
    op.create_table(
        "job_storage",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("backend_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_storage_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["backend_id"], ["storage_backends.id"], name=op.f("fk_job_storage_backend_id_storage_backends")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_storage")),
    )
    op.create_index("ix_job_storage_backend", "job_storage", ["backend_id"])


def downgrade() -> None:
    op.drop_index("ix_job_storage_backend", table_name="job_storage")
    op.drop_table("job_storage")
    op.drop_index("ix_storage_backends_key", table_name="storage_backends")
    op.drop_table("storage_backends")
