"""The ``x-api-key`` dependency with the Tornado 401 bodies.

It is async so that a cached key costs no trip to the thread pool; a cache miss reads the
database in the pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from squall.api.deps import get_app_settings, get_database
from squall.db import Database
from squall.errors import NotAuthenticated, RateLimited
from squall.keys.cache import KeyCache
from squall.keys.ratelimit import RateLimiter
from squall.keys.secrets import hash_key
from squall.keys.service import AuthenticatedKey, find_key


def _lookup(db: Database, digest: str) -> AuthenticatedKey | None:
    """A read of its own, ended at once (the edge's, like the route's): authentication runs
    before the route and must not hold a read open while a write route works."""
    with db.read() as session:
        return find_key(session, digest)


# Declares the header as the API's security scheme, so /docs' "Authorize" sends it.
API_KEY_HEADER = APIKeyHeader(
    name="x-api-key", scheme_name="ApiKey", auto_error=False, description="An API key (sk_…)."
)


async def current_key(
    request: Request, api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None
) -> AuthenticatedKey:
    if not api_key:
        raise NotAuthenticated("Missing x-api-key header")
    digest = hash_key(api_key, get_app_settings(request).resolved_secret_key())
    cache: KeyCache = request.app.state.key_cache
    key = cache.get(digest)
    if key is None:
        key = await run_in_threadpool(_lookup, get_database(request), digest)
        if key is None:
            raise NotAuthenticated("Invalid API Key")
        cache.put(digest, key)
    await _within_rate_limit(request, key)
    return key


async def _within_rate_limit(request: Request, key: AuthenticatedKey) -> None:
    """429 past the key's requests per minute (its own limit, else the operator's default)."""
    limit = key.rate_limit_per_minute or get_app_settings(request).rate_limit_per_minute
    if not limit:
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    decision, delta, window = limiter.check_local(key.id, limit)
    if decision is None:  # this request carries the process's count to the database
        decision = await run_in_threadpool(limiter.sync, key.id, limit, window, delta)
    if not decision.allowed:
        headers = {"Retry-After": str(decision.reset_seconds), **decision.headers()}
        raise RateLimited(
            f"Rate limit exceeded: this key may make {limit} requests a minute; "
            f"try again in {decision.reset_seconds} s",
            headers=headers,
        )


CurrentKey = Annotated[AuthenticatedKey, Depends(current_key)]
