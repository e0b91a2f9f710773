"""Usage alerts, decided in the transaction of the change that causes them (an admission, a
job's end) and sent through the webhook outbox, so an alert exists exactly when its cause
committed: never lost, never doubled (a worker killed mid-job rolls both back).

- ``usage.quota_threshold``: a limited key's effective usage (stored + reserved) crossed 50,
  75, 90 or 100 % of its quota. Each threshold is sent once; it is re-armed only after usage
  has gone back below it.
- ``usage.failure_rate``: more than 5 % of the key's jobs that ended in the last 24 hours
  failed, once at least ``MIN_JOBS`` ended; ``usage.failure_rate.resolved`` when it is back
  at or under 5 %.

They go to the key's ``alert_webhook_url``, else to the webhook_url of the job that caused
them (none: the dashboard banner only), signed like every other event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from squall.alerts.models import AlertState
from squall.clock import DAY_MS
from squall.jobs.events import JobEnded, JobsAdmitted
from squall.jobs.models import ENDED_WITHOUT_OUTPUT, Job, JobStatus
from squall.keys.models import ApiKey
from squall.metering.models import KeyCounters
from squall.webhooks import outbox

THRESHOLDS = (50, 75, 90, 100)
FAILURE_RATE = 0.05
MIN_JOBS = 20  # one failure of two pages no one
ENDED = (JobStatus.COMPLETED, *ENDED_WITHOUT_OUTPUT)


def on_jobs_admitted(session: Session, admitted: JobsAdmitted) -> None:
    if admitted.quota_limited:
        check_quota(session, admitted.key_id, now=admitted.at, fallback_url=admitted.webhook_url)


def on_job_ended(session: Session, ended: JobEnded) -> None:
    fallback = ended.hook.url if ended.hook is not None else None
    check_quota(session, ended.key_id, now=ended.at, fallback_url=fallback)
    check_failure_rate(session, ended.key_id, now=ended.at, fallback_url=fallback)


def _locked_state(session: Session, key_id: str) -> AlertState:
    """The key's alert state, created on first use, locked until commit (PostgreSQL), so two
    transactions of one key never both send the same crossing."""
    module: Any = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    session.execute(
        module.insert(AlertState)
        .values(key_id=key_id, quota_level=0, failure_alerting=False)
        .on_conflict_do_nothing(index_elements=["key_id"])
    )
    return session.execute(
        select(AlertState)
        .where(AlertState.key_id == key_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _level(percent: float) -> int:
    return max((t for t in THRESHOLDS if percent >= t), default=0)


def check_quota(session: Session, key_id: str, *, now: int, fallback_url: str | None) -> None:
    limit, used, reserved = session.execute(
        select(KeyCounters.storage_limit_bytes, KeyCounters.used_bytes, KeyCounters.reserved_bytes).where(
            KeyCounters.key_id == key_id
        )
    ).one()
    if not limit:
        return
    percent = 100 * (used + reserved) / limit
    state = _locked_state(session, key_id)
    level = _level(percent)
    crossed = [t for t in THRESHOLDS if state.quota_level < t <= level]
    if level != state.quota_level:
        state.quota_level, state.updated_at = level, now  # lower: re-armed below it
    for threshold in crossed:
        _send(session, key_id, fallback_url, now, {
            "type": "usage.quota_threshold", "threshold_percent": threshold,
            "usage_percent": round(percent, 2), "storage_limit_bytes": limit,
            "stored_bytes": used, "reserved_bytes": reserved,
        })  # fmt: skip
    session.flush()


def failure_counts(session: Session, key_id: str, *, now: int) -> tuple[int, int]:
    """(ended, failed) jobs of the key in the last 24 hours (``ix_jobs_key_finished``)."""
    ended, failed = session.execute(
        select(
            func.count(), func.coalesce(func.sum(case((Job.status.in_(ENDED_WITHOUT_OUTPUT), 1), else_=0)), 0)
        ).where(Job.key_id == key_id, Job.finished_at >= now - DAY_MS, Job.status.in_(ENDED))
    ).one()
    return int(ended), int(failed)


def check_failure_rate(session: Session, key_id: str, *, now: int, fallback_url: str | None) -> None:
    ended, failed = failure_counts(session, key_id, now=now)
    rate = failed / ended if ended else 0.0
    firing = ended >= MIN_JOBS and rate > FAILURE_RATE
    state = _locked_state(session, key_id)
    state.failure_rate = rate
    if firing == state.failure_alerting:
        return
    state.failure_alerting, state.updated_at = firing, now
    _send(session, key_id, fallback_url, now, {
        "type": "usage.failure_rate" if firing else "usage.failure_rate.resolved",
        "failure_rate": round(rate, 4), "threshold": FAILURE_RATE, "jobs_ended_24h": ended, "jobs_failed_24h": failed,
    })  # fmt: skip
    session.flush()


def _send(session: Session, key_id: str, fallback_url: str | None, now: int, payload: dict[str, Any]) -> None:
    url = (
        session.execute(select(ApiKey.alert_webhook_url).where(ApiKey.id == key_id)).scalar_one()
        or fallback_url
    )
    if url:
        outbox.enqueue(
            session, key_id=key_id, url=url, payload={**payload, "key_id": key_id, "at": now}, now=now
        )


def banners(session: Session, key_id: str) -> list[dict[str, Any]]:
    """The alerts raised now, as the dashboard shows them."""
    state = session.get(AlertState, key_id)
    if state is None:
        return []
    shown = []
    if state.quota_level:
        shown.append({"type": "usage.quota_threshold", "threshold_percent": state.quota_level,
                      "message": f"Storage is at {state.quota_level} % or more of this key's quota."})  # fmt: skip
    if state.failure_alerting:
        rate = round(100 * (state.failure_rate or 0), 1)
        shown.append({"type": "usage.failure_rate", "failure_rate": state.failure_rate,
                      "message": f"{rate} % of this key's jobs in the last 24 hours failed (over 5 %)."})  # fmt: skip
    return shown
