"""tenants: fair queue index, per-key concurrency and rate limits, usage alerts, operator
tokens, worker registry, rate-limit windows

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("max_concurrent_jobs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("alert_webhook_url", sa.Text(), nullable=True))
    with op.batch_alter_table("key_counters") as batch:
        batch.add_column(sa.Column("last_claimed_at", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_jobs_key_queue",
        "jobs",
        ["key_id", sa.text("priority DESC"), "created_at"],
        postgresql_where=sa.text("status = 'Pending'"),
        sqlite_where=sa.text("status = 'Pending'"),
    )
    op.create_index("ix_jobs_started", "jobs", ["started_at"])
    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_operator_tokens_token_hash")),
    )
    op.create_table(
        "usage_alert_states",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("quota_level", sa.Integer(), nullable=False),
        sa.Column("failure_alerting", sa.Boolean(), nullable=False),
        sa.Column("failure_rate", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_usage_alert_states_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_usage_alert_states")),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_heartbeat_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "rate_limit_windows",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_rate_limit_windows_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "window_start", name=op.f("pk_rate_limit_windows")),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_windows")
    op.drop_table("workers")
    op.drop_table("usage_alert_states")
    op.drop_table("operator_tokens")
    op.drop_index("ix_jobs_started", table_name="jobs")
    op.drop_index("ix_jobs_key_queue", table_name="jobs")
    with op.batch_alter_table("key_counters") as batch:
        batch.drop_column("last_claimed_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("alert_webhook_url")
        batch.drop_column("rate_limit_per_minute")
        batch.drop_column("max_concurrent_jobs")
