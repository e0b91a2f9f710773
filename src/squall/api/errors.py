"""Domain errors to HTTP, in one place: each kind of ``SquallError`` has one status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from squall.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    QuotaExceeded,
    RateLimited,
    SquallError,
    TimedOut,
    Unavailable,
)
from squall.logging import get_logger
from squall.validation import describe_validation_error

log = get_logger("squall.app")

STATUS: dict[type[SquallError], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    QuotaExceeded: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    Unavailable: 502,
    TimedOut: 504,
}


def status_for(error: SquallError) -> int:
    """The status of the nearest kind in the error's ancestry; 500 for none (a bug)."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SquallError)
    async def _squall_error(_request: Request, exc: SquallError) -> JSONResponse:
        headers = exc.headers if isinstance(exc, RateLimited) else None
        return JSONResponse(exc.body(), status_code=status_for(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation_error(exc.errors())}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse({"error": "Internal server error"}, status_code=500)
