"""The operator's credential: ``Authorization: Bearer <operator token>``. API keys are not
operator tokens (another table), so a key never opens an admin route, and a token sent as
``x-api-key`` is no key either. /metrics also opens to ``SQUALL_METRICS_ALLOW`` addresses."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from squall.admin.tokens import find_operator
from squall.api.deps import get_app_settings, get_database
from squall.db import Database
from squall.errors import NotAuthenticated
from squall.keys.secrets import hash_key
from squall.settings import parse_networks


def _lookup(db: Database, digest: str) -> str | None:
    with db.read() as session:
        return find_operator(session, digest)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def operator_id(request: Request) -> str | None:
    """The operator token's id, or None when the request carries none that is valid."""
    token = _bearer(request)
    if token is None:
        return None
    digest = hash_key(token, get_app_settings(request).resolved_secret_key())
    return await run_in_threadpool(_lookup, get_database(request), digest)


async def current_operator(request: Request) -> str:
    if _bearer(request) is None:
        raise NotAuthenticated("Missing operator token (Authorization: Bearer ...)")
    found = await operator_id(request)
    if found is None:
        raise NotAuthenticated("Invalid operator token")
    return found


async def may_read_metrics(request: Request) -> None:
    """An allowed address, or the operator token; else 401."""
    allow = get_app_settings(request).metrics_allow
    host = request.client.host if request.client else ""
    if allow and host:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in parse_networks(allow)):
            return
    if await operator_id(request) is None:
        raise NotAuthenticated("/metrics needs the operator token or an address in SQUALL_METRICS_ALLOW")


CurrentOperator = Annotated[str, Depends(current_operator)]
MetricsReader = Depends(may_read_metrics)
