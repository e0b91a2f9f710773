"""FastAPI dependencies shared by every domain's routes. ``app.py`` fills ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from squall.db import Database
from squall.settings import Settings
from squall.storage.base import Storage

# These are async on purpose: FastAPI runs a sync dependency in the thread pool, which would
# cost a thread hop per dependency per request for what is an attribute lookup.


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def database_dep(request: Request) -> Database:
    return get_database(request)


async def settings_dep(request: Request) -> Settings:
    return get_app_settings(request)


async def storage_dep(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(database_dep)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
StorageDep = Annotated[Storage, Depends(storage_dep)]
