"""webhook deliveries keep their order: a sequence per row, indexes for the claim's check

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    # Rows written before this version: numbered in the order they were written (as near as
    # their creation times tell; ties by id). UPDATE ... FROM: PostgreSQL, SQLite 3.33+.
    op.execute(
        "UPDATE webhook_deliveries SET seq = numbered.n FROM (SELECT id, ROW_NUMBER() OVER "
        "(ORDER BY created_at, id) AS n FROM webhook_deliveries) AS numbered "
        "WHERE webhook_deliveries.id = numbered.id"
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_webhook_deliveries_seq", ["seq"], unique=False)
        batch_op.create_index("ix_webhook_deliveries_pending_job", ["job_id", "seq"], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)  # fmt: skip
        batch_op.create_index("ix_webhook_deliveries_pending_batch", ["batch_id", "seq"], unique=False,
                              postgresql_where=PENDING, sqlite_where=PENDING)  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_webhook_deliveries_pending_batch", postgresql_where=PENDING, sqlite_where=PENDING
        )
        batch_op.drop_index(
            "ix_webhook_deliveries_pending_job", postgresql_where=PENDING, sqlite_where=PENDING
        )
        batch_op.drop_index("ix_webhook_deliveries_seq")
        batch_op.drop_column("seq")
