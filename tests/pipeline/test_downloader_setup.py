"""The downloader children's yt-dlp: its JavaScript runtime, the operator's options (unsafe
ones refused at start), plugins from a folder, and what counts as the source blaming us."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from squall.db import Database
from squall.doctor import run_checks
from squall.pipeline.failures import classify
from squall.pipeline.toolchain import child_report
from squall.pipeline.ytdlp_config import DownloaderConfig, bundled_deno, downloader_config, js_runtimes_option
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.support.gated import GatedSource
from tests.support.helpers import drain
from tests.support.server import MediaServer

PLUGINS = Path(__file__).parent / "plugins"


def test_a_downloader_child_finds_the_deno_installed_from_its_wheel() -> None:
    deno = bundled_deno()
    assert deno is not None and Path(deno).is_relative_to(sys.prefix)  # this install's own Deno
    assert js_runtimes_option("") == {"deno": {"path": deno}}
    report = child_report(DownloaderConfig())  # yt-dlp's own view, inside a downloader child
    runtime = report["js_runtimes"]["deno"]
    assert runtime is not None and runtime["name"] == "deno" and runtime["supported"] is True
    assert runtime["version"].split(".")[0] == "2"


def test_another_runtime_or_none_can_be_chosen() -> None:
    assert js_runtimes_option("none") == {}
    assert js_runtimes_option("node") == {"node": {}}
    assert js_runtimes_option("/opt/node/bin/node") == {"node": {"path": "/opt/node/bin/node"}}
    missing = child_report(DownloaderConfig(js_runtimes={"deno": {"path": "/nonexistent/deno"}}))
    assert missing["js_runtimes"] == {"deno": None}  # yt-dlp reports it unavailable
    with pytest.raises(ValidationError, match="not deno, node, bun, quickjs"):
        Settings(js_runtime="/usr/bin/python3")


@pytest.mark.parametrize(
    "option", ["external_downloader", "postprocessors", "outtmpl", "cookiesfrombrowser", "proxy"]
)
def test_options_that_defeat_the_sandbox_or_guard_are_refused_by_name(option: str) -> None:
    with pytest.raises(ValidationError, match=option):
        Settings(ytdlp_options=f'{{"{option}": "x", "extractor_args": {{}}}}')
    with pytest.raises(ValidationError, match="JSON object"):
        Settings(ytdlp_options="[1, 2]")


def test_a_forbidden_option_stops_start_up_with_a_message(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SQUALL_DATA_DIR": str(tmp_path),
        "SQUALL_YTDLP_OPTIONS": '{"exec_cmd": "rm -rf /"}',
    }
    done = subprocess.run([sys.executable, "-m", "squall", "serve", "--port", "1"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "ytdlp_options" in done.stderr and "refused: exec_cmd" in done.stderr


def test_operator_options_reach_every_downloader_child(
    client: TestClient, api_key: str, settings: Settings, db: Database, storage: LocalStorage, media_dir: Path
) -> None:
    configured = settings.model_copy(
        update={"ytdlp_options": '{"http_headers": {"X-Squall-Operator": "yes"}}'}
    )
    with GatedSource(media_dir) as source:
        job_id = client.post(
            "/jobs", headers={"x-api-key": api_key}, json={"url": source.url("media/tiny.mp4")}
        )
        drain(Worker(configured, db=db, storage=storage))
    assert (
        client.get(f"/jobs/{job_id.json()['job_id']}", headers={"x-api-key": api_key}).json()["status"]
        == "Completed"
    )
    assert all(seen.headers.get("X-Squall-Operator") == "yes" for seen in source.seen) and source.seen


def test_a_plugin_from_a_folder_is_loaded_and_used_for_a_job(
    client: TestClient,
    api_key: str,
    settings: Settings,
    db: Database,
    storage: LocalStorage,
    media: MediaServer,
) -> None:
    configured = settings.model_copy(update={"ytdlp_plugin_dirs": str(PLUGINS)})
    assert "SquallTestIE" in child_report(downloader_config(configured))["plugins"]
    assert "SquallTestIE" not in child_report(DownloaderConfig())["plugins"]  # only where configured
    server = media.url("").split("/")[2]
    url = f"http://squall-test.invalid/tiny.mp4?server={server}"
    job_id = client.post("/jobs", headers={"x-api-key": api_key}, json={"url": url}).json()["job_id"]
    drain(Worker(configured, db=db, storage=storage))
    job = client.get(f"/jobs/{job_id}", headers={"x-api-key": api_key}).json()
    assert job["status"] == "Completed", job
    assert job["title"] == "Squall test plugin: tiny.mp4"


def test_bot_checks_and_429_blame_the_client() -> None:
    from yt_dlp.utils import ExtractorError

    bot = classify(ExtractorError("Sign in to confirm you're not a bot. Use --cookies"))
    assert bot.client_blamed and bot.retryable and "rate limiting" in bot.message
    age = classify(ExtractorError("Sign in to confirm your age"))
    assert not age.client_blamed and age.outcome == "Warning"


def test_proxies_must_be_proxy_urls_and_doctor_never_shows_their_credentials(
    settings: Settings, db: Database, storage: LocalStorage
) -> None:
    with pytest.raises(ValidationError, match="'ftp://x:21' is not a proxy URL"):
        Settings(proxies="http://ok:3128, ftp://x:21")
    configured = settings.model_copy(
        update={"proxies": "http://user:pa55@proxy.example:3128,socks5://127.0.0.1:1080"}
    )
    shown = run_checks(configured, db, storage)["proxies"]
    assert shown.facts["proxies"] == ["http://proxy.example:3128", "socks5://127.0.0.1:1080"]
    assert "pa55" not in str(shown)
