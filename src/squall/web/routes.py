"""The web dashboard: one page at ``/`` and its static files at ``/static`` (the chart
library included), all served by Squall itself: it works offline, with no CDN. The page
signs in with an API key kept in the browser's session storage and reads the same JSON
endpoints the API offers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


@router.get("/operator")
async def operator_page() -> FileResponse:
    """The operator's page: its own sign-in with an operator token; reads /admin/*."""
    return FileResponse(STATIC / "operator.html", headers={"cache-control": "no-cache"})


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
