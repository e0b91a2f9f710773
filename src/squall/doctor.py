"""``squall doctor`` and ``GET /healthz?verbose=1``: the versions and health of what Squall
downloads and stores with. A check fails when something required is missing or broken (the
command then exits 1) and warns when something works but needs attention."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from squall import __version__
from squall.errors import NotAuthenticated
from squall.pipeline.cookies import cookie_lines
from squall.pipeline.toolchain import (
    child_report,
    ffmpeg_facts,
    js_runtime_facts,
    package_version,
    ytdlp_release,
)
from squall.pipeline.urlguard import url_policy
from squall.pipeline.ytdlp_config import DownloaderConfig, downloader_config
from squall.settings import Settings, get_settings

if TYPE_CHECKING:  # the command line imports this module: the database code only when used
    from fastapi import Request

    from squall.db import Database
    from squall.storage.base import Storage

PROBE_KEY = "squall-doctor/probe"  # only asked whether it exists: a read that reaches the backend


@dataclass
class Check:
    status: str  # ok, warn or fail
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


def _versions(settings: Settings, today: dt.date) -> dict[str, Check]:
    release = ytdlp_release(today)
    old = release["age_days"] > settings.ytdlp_max_age_days
    ytdlp = Check("warn" if old else "ok", f"yt-dlp {release['version']}, {release['age_days']} days old"
                  + (f" (older than {settings.ytdlp_max_age_days} days: update it, see docs/operations.md)"
                     if old else ""), release)  # fmt: skip
    ejs = package_version("yt-dlp-ejs")
    return {
        "yt_dlp": ytdlp,
        "yt_dlp_ejs": Check("ok", f"yt-dlp-ejs {ejs}", {"version": ejs})
        if ejs
        else Check("fail", "yt-dlp-ejs is not installed (YouTube needs it)"),
    }


def _downloader(config: DownloaderConfig) -> dict[str, Check]:
    runtime = js_runtime_facts(config)
    if runtime["name"] is None:
        js = Check("warn", "no JavaScript runtime (SQUALL_JS_RUNTIME=none): YouTube formats will be missing")
    elif runtime["runs"]:
        js = Check("ok", f"{runtime['name']} at {runtime['path']}: {runtime['version']}", runtime)
    else:
        js = Check("fail", f"the JavaScript runtime {runtime['name']} ({runtime['path'] or 'not on PATH'}) "
                   "does not run", runtime)  # fmt: skip
    try:
        report = child_report(config)
    except Exception as exc:  # any failure to start or answer is the finding
        return {"js_runtime": js, "downloader": Check("fail", f"a downloader child failed: {exc}")}
    seen = {name: info for name, info in report["js_runtimes"].items()}
    missing = [name for name, info in seen.items() if info is None]
    child = Check("fail" if missing else "ok", "a downloader child " + (
        f"does not find the JavaScript runtime {', '.join(missing)}" if missing
        else f"runs yt-dlp {report['ytdlp_version']} with JS runtimes: {', '.join(seen) or 'none'}"), report)  # fmt: skip
    absent = [d for d in config.plugin_dirs if not Path(d).is_dir()]
    plugins = Check("fail" if absent else "ok", (f"plugin folder(s) missing: {', '.join(absent)}" if absent else
                    f"plugins loaded: {', '.join(report['plugins']) or 'none'}"),
                    {"loaded": report["plugins"], "folders": list(config.plugin_dirs)})  # fmt: skip
    return {"js_runtime": js, "downloader": child, "plugins": plugins}


def _ffmpeg() -> Check:
    facts = ffmpeg_facts()
    if not facts["runs"]:
        return Check("fail", f"FFmpeg at {facts['path']} does not run", facts)
    return Check("ok", f"{facts['version']} ({facts['build']} build, {facts['path']})", facts)


def _database(db: Database) -> Check:
    from sqlalchemy import text

    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("fail", f"the database is not reachable: {type(exc).__name__}")
    return Check("ok", "the database answers", {"engine": "sqlite" if db.is_sqlite else "postgresql"})


def _storage(settings: Settings, storage: Storage) -> Check:
    try:
        storage.exists(PROBE_KEY)
    except Exception as exc:
        return Check("fail", f"the {settings.storage} storage is not reachable: {type(exc).__name__}")
    return Check("ok", f"the {settings.storage} storage answers", {"backend": settings.storage})


def _sources(settings: Settings, config: DownloaderConfig) -> dict[str, Check]:
    policy = url_policy(settings)
    mode = ("every address (SQUALL_ALLOW_PRIVATE_URLS)" if policy.allow_private else "public addresses only"
            + "".join(f", and {n}" for n in policy.allowed_networks))  # fmt: skip
    checks = {"url_guard": Check("ok", f"sources and webhooks may reach {mode}",
                                 {"allow_private": policy.allow_private,
                                  "allowed_networks": [str(n) for n in policy.allowed_networks]})}  # fmt: skip
    endpoints = [
        f"{urlsplit(p).scheme}://{urlsplit(p).hostname}:{urlsplit(p).port or ''}" for p in config.proxies
    ]
    checks["proxies"] = Check("ok", f"{len(endpoints)} outbound proxies", {"proxies": endpoints})
    if config.cookies_file:
        try:
            count = len(cookie_lines(Path(config.cookies_file).read_text(encoding="utf-8")))
            checks["cookies_file"] = Check("ok", f"operator cookie file: {count} cookies")
        except (OSError, ValueError) as exc:
            checks["cookies_file"] = Check(
                "fail", f"the cookie file SQUALL_COOKIES_FILE cannot be used: {exc}"
            )
    return checks


def run_checks(
    settings: Settings, db: Database, storage: Storage, today: dt.date | None = None
) -> dict[str, Check]:
    config = downloader_config(settings)
    return {
        **_versions(settings, today or dt.datetime.now(dt.UTC).date()),
        **_downloader(config),
        "ffmpeg": _ffmpeg(),
        "database": _database(db),
        "storage": _storage(settings, storage),
        **_sources(settings, config),
    }


def summary(checks: dict[str, Check]) -> dict[str, Any]:
    statuses = {check.status for check in checks.values()}
    overall = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"
    return {"status": overall, "checks": {name: check.__dict__ for name, check in checks.items()}}


def doctor_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Versions and health of yt-dlp (and its age), yt-dlp-ejs, the JS runtime, FFmpeg, the
    database and storage; exit 1 when something required is missing."""
    from squall.db import Database
    from squall.storage.factory import make_storage

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        result = summary(run_checks(settings, db, make_storage(settings)))
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for name, check in result["checks"].items():
            typer.echo(f"{check['status']:<5} {name:<12} {check['detail']}")
    if result["status"] == "fail":
        raise typer.Exit(1)


async def verbose_health(request: Request) -> dict[str, Any]:
    """``GET /healthz?verbose=1``: the doctor's report, only for an operator (it names versions
    and paths an attacker would like to know): ``Authorization: Bearer`` with a token from
    ``squall admin token create``, or the ``SQUALL_OPERATOR_TOKEN`` setting."""
    from anyio import to_thread

    from squall.admin.auth import operator_id

    settings: Settings = request.app.state.settings
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    configured = settings.operator_token and hmac.compare_digest(
        given.encode(), settings.operator_token.encode()
    )
    if not configured and await operator_id(request) is None:
        raise NotAuthenticated(
            "The verbose health report needs an operator token (Authorization: Bearer ...): "
            "create one with `squall admin token create`, or set SQUALL_OPERATOR_TOKEN"
        )
    checks = await to_thread.run_sync(run_checks, settings, request.app.state.db, request.app.state.storage)
    return {"version": __version__, **summary(checks)}
