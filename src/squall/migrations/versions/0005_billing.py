"""billing periods, meter report outbox, ledger index by metric and time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_periods",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("period_start", sa.BigInteger(), nullable=True),
        sa.Column("period_end", sa.BigInteger(), nullable=True),
        sa.Column("interval", sa.String(length=16), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_billing_periods_key_id_api_keys")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_billing_periods")),
    )
    op.create_table(
        "meter_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_meter_reports_key_id_api_keys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_reports")),
    )
    op.create_index(
        "ix_meter_reports_due",
        "meter_reports",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_usage_events_key_metric_time", "usage_events", ["key_id", "metric", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_events_key_metric_time", table_name="usage_events")
    op.drop_index("ix_meter_reports_due", table_name="meter_reports")
    op.drop_table("meter_reports")
    op.drop_table("billing_periods")
