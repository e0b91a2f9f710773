"""usage_months: the date-range endpoints' finished days, one row per key, endpoint and month

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from squall.metering import months

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_months",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_usage_months_key_id_api_keys")),
        sa.PrimaryKeyConstraint("key_id", "kind", "month", name=op.f("pk_usage_months")),
    )
    # The days already finished, from the daily rollups (as the first usage of a day would).
    today = datetime.now(UTC).date()
    months.backfill(op.get_bind(), today - timedelta(days=months.GRACE_DAYS))


def downgrade() -> None:
    op.drop_table("usage_months")
