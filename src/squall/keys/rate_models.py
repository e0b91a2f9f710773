from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from squall.db.base import Base


class RateWindow(Base):
    """Requests a key made in one fixed minute, summed over every API process of the
    deployment (``keys/ratelimit.py``)."""

    __tablename__ = "rate_limit_windows"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # ms, a whole minute
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
