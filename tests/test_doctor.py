"""``squall doctor`` (a real subprocess against the test database) and ``/healthz?verbose=1``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from fastapi.testclient import TestClient

from squall.admin.tokens import create_token
from squall.app import create_app
from squall.db import Database
from squall.doctor import run_checks
from squall.settings import Settings
from squall.storage.local import LocalStorage
from tests.support.helpers import PYTHON, worker_env

TOKEN = "operator-token-for-tests"


def doctor(settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "squall", "doctor", "--json"], env={**worker_env(settings), **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_doctor_reports_every_version_and_fails_without_the_js_runtime(
    settings: Settings, db: Database
) -> None:
    healthy = doctor(settings)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads(healthy.stdout)
    checks = report["checks"]
    assert report["status"] in ("ok", "warn")  # an old yt-dlp only warns
    assert checks["yt_dlp"]["facts"]["version"].count(".") >= 2 and checks["yt_dlp"]["facts"]["age_days"] >= 0
    assert checks["yt_dlp_ejs"]["status"] == "ok" and checks["yt_dlp_ejs"]["facts"]["version"]
    assert checks["js_runtime"]["status"] == "ok" and checks["js_runtime"]["facts"]["version"].startswith(
        "deno "
    )
    assert checks["downloader"]["facts"]["js_runtimes"]["deno"]["name"] == "deno"
    assert checks["ffmpeg"]["status"] == "ok" and checks["ffmpeg"]["facts"]["build"] in ("system", "wheel")
    assert checks["database"]["status"] == "ok" and checks["storage"]["status"] == "ok"
    assert checks["url_guard"]["facts"]["allow_private"] is True  # the test settings allow it
    assert checks["plugins"]["facts"]["loaded"] == []

    broken = doctor(settings, SQUALL_JS_RUNTIME="/nonexistent/deno")
    assert broken.returncode == 1
    checks = json.loads(broken.stdout)["checks"]
    assert checks["js_runtime"]["status"] == "fail" and checks["downloader"]["status"] == "fail"


def test_an_old_ytdlp_is_a_warning_past_the_configured_age(
    settings: Settings, db: Database, storage: LocalStorage
) -> None:
    checks = run_checks(settings, db, storage, today=dt.date(2100, 1, 1))
    assert checks["yt_dlp"].status == "warn" and "older than 60 days" in checks["yt_dlp"].detail
    young = settings.model_copy(update={"ytdlp_max_age_days": 1_000_000})
    assert run_checks(young, db, storage, today=dt.date(2100, 1, 1))["yt_dlp"].status == "ok"


def test_verbose_health_needs_the_operator_token(
    settings: Settings, db: Database, storage: LocalStorage
) -> None:
    with TestClient(create_app(settings, db=db, storage=storage)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        off = client.get("/healthz?verbose=1")
        assert off.status_code == 401 and "squall admin token create" in off.json()["error"]
        with db.write() as session:
            stored = create_token(session, pepper=settings.resolved_secret_key(), name="ops", now=0)
        by_stored = client.get("/healthz?verbose=1", headers={"Authorization": f"Bearer {stored.token}"})
        assert by_stored.status_code == 200 and "yt_dlp" in by_stored.json()["checks"]
    with_token = settings.model_copy(update={"operator_token": TOKEN})
    with TestClient(create_app(with_token, db=db, storage=storage)) as client:
        assert client.get("/healthz?verbose=1", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert "checks" not in client.get("/healthz").json()  # the plain liveness answer stays bare
        report = client.get("/healthz?verbose=1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert report.status_code == 200
        assert {"yt_dlp", "js_runtime", "ffmpeg", "database", "storage", "url_guard"} <= report.json()[
            "checks"
        ].keys()
