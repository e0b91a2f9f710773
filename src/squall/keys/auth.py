"""The ``x-api-key`` dependency with the Tornado 401 bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from squall.errors import Unauthorized
from squall.http import get_app_settings, get_database
from squall.keys.service import AuthenticatedKey, authenticate


def current_key(request: Request) -> AuthenticatedKey:
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise Unauthorized("Missing x-api-key header")
    settings = get_app_settings(request)
    with get_database(request).read() as session:
        key = authenticate(session, api_key, settings.resolved_secret_key())
    if key is None:
        raise Unauthorized("Invalid API Key")
    return key


CurrentKey = Annotated[AuthenticatedKey, Depends(current_key)]
