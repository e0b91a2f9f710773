"""Domain errors to HTTP, in one place: each kind of ``SquallError`` has one status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from squall.db.outage import is_busy, is_outage, unavailable
from squall.errors import (
    Conflict,
    DatabaseUnavailable,
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
    DatabaseUnavailable: 503,
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
        return _squall_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe_validation_error(exc.errors())}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        methods = allowed_methods(request) if exc.status_code == 405 else None
        if methods:  # Starlette names only the first matching route's methods
            kept = {name: value for name, value in (headers or {}).items() if name.lower() != "allow"}
            headers = {**kept, "allow": ", ".join(methods)}
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    # Database errors get their own handler: Starlette re-raises what the catch-all below
    # handles (a traceback in the server's log), which an outage is not.
    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc) or is_busy(exc):  # restarting, unreachable or locked: try again soon
            log.warning("database unavailable", path=request.url.path, error=str(exc).splitlines()[0])
            return _squall_response(unavailable())
        log.error("database error", path=request.url.path, exc_info=exc)
        return JSONResponse({"error": "Internal server error"}, status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse({"error": "Internal server error"}, status_code=500)


def allowed_methods(request: Request) -> list[str]:
    """Every method the API document lists for this path (a path often has a route per method);
    empty for paths outside it (the dashboard's pages)."""
    parts = request.url.path.split("/")
    paths = request.app.openapi().get("paths", {})
    for template in sorted(paths, key=lambda t: t.count("{")):  # /jobs/bulk before /jobs/{job_id}
        operations = paths[template]
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(
            p == s or (p.startswith("{") and p.endswith("}") and s)
            for p, s in zip(pattern, parts, strict=True)
        ):
            return sorted(method.upper() for method in operations)
    return []


def _squall_response(exc: SquallError) -> JSONResponse:
    headers: dict[str, str] | None = None
    if isinstance(exc, DatabaseUnavailable):
        headers = {"retry-after": str(exc.retry_after_s)}
    elif isinstance(exc, RateLimited):  # Retry-After and the RateLimit headers of the draft
        headers = exc.headers
    return JSONResponse(exc.body(), status_code=status_for(exc), headers=headers)
