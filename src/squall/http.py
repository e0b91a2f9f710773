"""FastAPI dependencies shared by every domain's routes. ``app.py`` fills ``app.state``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from squall.db import Database
from squall.settings import Settings
from squall.storage.base import Storage


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


def write_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One write transaction per request, committed after the handler returns."""
    with db.write() as session:
        yield session


def read_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.read() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
WriteSession = Annotated[Session, Depends(write_session)]
ReadSession = Annotated[Session, Depends(read_session)]
