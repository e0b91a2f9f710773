"""The dashboard's alert banners of the calling key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from squall.alerts.service import banners
from squall.api.deps import ReadTx
from squall.api.routing import TransactionalRoute
from squall.keys.auth import CurrentKey

router = APIRouter(tags=["usage"], route_class=TransactionalRoute)


@router.get("/dashboard/alerts", response_model=None, summary="Usage alerts raised now (dashboard banners)")
def dashboard_alerts(key: CurrentKey, tx: ReadTx) -> dict[str, Any]:
    return {"alerts": banners(tx.session, key.id)}
