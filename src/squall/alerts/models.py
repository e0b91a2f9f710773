from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base


class AlertState(Base):
    """What a key has been alerted of, so each crossing is sent once: the highest quota
    threshold crossed (0, 50, 75, 90, 100) and whether the failure-rate alert is raised."""

    __tablename__ = "usage_alert_states"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    quota_level: Mapped[int] = mapped_column(Integer, default=0)
    failure_alerting: Mapped[bool] = mapped_column(Boolean, default=False)
    failure_rate: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[int | None] = mapped_column(BigInteger)
