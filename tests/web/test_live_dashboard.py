"""The dashboard and a live recording, in a real browser (skipped, saying so, without Chromium)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.live_stream import LiveStream
from tests.support.server import MediaServer
from tests.web.test_dashboard import browser, console_errors, page, sign_in, submit  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
def on_air(tmp_path: Path) -> Iterator[MediaServer]:
    with MediaServer(tmp_path) as server, LiveStream(tmp_path / "air", window=4) as stream:
        stream.wait_for_segments(2)
        yield server


def test_a_recording_shows_its_elapsed_time_and_can_be_stopped(
    page: Page,  # noqa: F811  (the fixture imported above)
    live_server: str,
    api_key: str,
    worker: Worker,
    on_air: MediaServer,
) -> None:
    job_id = submit(live_server, api_key, on_air.url("media/air/index.m3u8"), max_duration=60)
    running = threading.Thread(target=drain, args=(worker,), daemon=True)
    running.start()
    sign_in(page, live_server, api_key)
    page.get_by_role("button", name="Jobs").click()
    row = page.locator(f'#jobs-body tr[data-job="{job_id}"]')
    expect(row).to_contain_text("Recording", timeout=20_000)
    row.click()
    detail = page.locator("#job-detail")
    expect(detail).to_contain_text("recording for", timeout=10_000)
    detail.get_by_role("button", name="Stop recording").click()
    running.join(timeout=30)
    expect(row).to_contain_text("Completed", timeout=10_000)
    expect(detail).to_contain_text("stopped by user_stop", timeout=10_000)
