"""The dashboard in a real browser: Playwright driving the machine's Chromium against a live
Squall. Without Chromium (apt-get install chromium) these tests are skipped, saying so."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.db import Database
from squall.worker import Worker
from tests.support.helpers import KeyFactory, drain
from tests.support.server import MediaServer

CHROMIUM = os.environ.get("SQUALL_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
# The README's pictures: written when SQUALL_SAVE_SCREENSHOTS is set, else to a scratch folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("SQUALL_SAVE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "squall-screenshots"
)
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, console_errors: list[str], live_server: str) -> Iterator[Page]:
    # live_server is set up first and so stopped last: a refresh the page sends while it
    # closes never meets a server that is already gone.
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    opened.on(
        "console", lambda message: console_errors.append(message.text) if message.type == "error" else None
    )
    opened.on("pageerror", lambda error: console_errors.append(str(error)))
    yield opened
    context.close()
    assert console_errors == [], f"console errors: {console_errors}"  # every test checks: none


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(base + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("body[data-ready=overview]")


def api(base: str, key: str, path: str) -> Any:
    return httpx.get(base + path, headers={"x-api-key": key}, timeout=10).json()


def submit(base: str, key: str, url: str, **fields: Any) -> str:
    answer = httpx.post(base + "/jobs", headers={"x-api-key": key}, json={"url": url, **fields}, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["job_id"])


def stat(page: Page, name: str) -> str:
    return page.locator(f'[data-stat="{name}"]').inner_text()


def test_a_wrong_key_is_refused_and_a_right_one_signs_in_and_out(
    page: Page, live_server: str, api_key: str, console_errors: list[str]
) -> None:
    page.goto(live_server + "/")
    page.get_by_label("API key").fill("sk_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That API key was not accepted. Check it and try again.")
    assert console_errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    console_errors.clear()  # the browser's own note of the refused request, expected here
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("body[data-ready=overview]")
    assert api_key not in page.url and page.evaluate("sessionStorage.getItem('squall.apiKey')") == api_key
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('squall.apiKey')") is None


def test_cards_and_chart_show_the_apis_numbers(
    page: Page, live_server: str, make_key: KeyFactory, worker: Worker, media: MediaServer
) -> None:
    key, _ = make_key("Cards", key_type="trial", storage_limit_bytes=50 * 1024**2)
    for name in ("a", "b"):
        submit(live_server, key, media.url("media/tiny.mp4"), filename=name)
    submit(live_server, key, media.url("octet/notmedia.bin"))
    drain(worker)
    submit(live_server, key, media.url("media/tiny.mp4"), filename="waiting")  # stays queued
    sign_in(page, live_server, key)
    stats = api(live_server, key, "/dashboard/stats")
    assert (stat(page, "total"), stat(page, "completed"), stat(page, "failed")) == ("4", "2", "1")
    assert stat(page, "processing") == str(stats["pending_jobs"] + stats["processing_jobs"]) == "1"
    assert stat(page, "processing-split") == "1 queued · 0 running"
    assert stat(page, "storage-exact") == f"{stats['storage_used_bytes']:,} bytes"
    assert stat(page, "storage").endswith("KB")
    expect(page.locator("#quota")).to_be_visible()
    # Hovering today's point shows its exact counts.
    today = api(live_server, key, "/dashboard/daily")["daily_stats"][-1]
    page.locator("#daily-chart").scroll_into_view_if_needed()
    box = page.locator("#daily-chart").bounding_box()
    point = page.evaluate(
        "(() => { const p = state.charts.daily.getDatasetMeta(0).data[6]; return [p.x, p.y]; })()"
    )
    assert box is not None
    page.mouse.move(box["x"] + point[0], box["y"] + point[1])
    expect(page.locator("#chart-tooltip")).to_contain_text(
        f"{today['completed']} completed, {today['failed']} failed"
    )
    screenshots(page, "overview")


def test_a_failure_rate_over_5_percent_is_flagged_with_its_reasons(
    page: Page, live_server: str, api_key: str, worker: Worker, media: MediaServer
) -> None:
    submit(live_server, api_key, media.url("media/tiny.mp4"))
    submit(live_server, api_key, media.url("octet/notmedia.bin"))
    drain(worker)
    sign_in(page, live_server, api_key)
    alert = page.locator('[data-alert="failures"]')
    expect(alert).to_contain_text("50.0% of the jobs of the last 7 days failed")
    expect(alert).to_contain_text("The downloaded file is not a media file (1)")


def test_a_job_completing_while_the_page_is_open_updates_the_cards(
    page: Page, live_server: str, api_key: str, worker: Worker, media: MediaServer
) -> None:
    submit(live_server, api_key, media.url("media/tiny.mp4"))
    sign_in(page, live_server, api_key)
    assert (stat(page, "processing"), stat(page, "completed")) == ("1", "0")
    drain(worker)
    expect(page.locator('[data-stat="completed"]')).to_have_text("1", timeout=10_000)  # no reload
    expect(page.locator('[data-stat="processing"]')).to_have_text("0")


def test_jobs_table_filters_searches_and_opens_a_job(
    page: Page, live_server: str, api_key: str, worker: Worker, media: MediaServer
) -> None:
    submit(live_server, api_key, media.url("media/tiny.mp4"), filename="holiday")
    submit(live_server, api_key, media.url("octet/notmedia.bin"))
    drain(worker)
    sign_in(page, live_server, api_key)
    page.get_by_role("button", name="Jobs").click()
    expect(page.locator("#jobs-body tr")).to_have_count(2)
    page.get_by_label("Search by URL or file name").fill("holiday")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    page.get_by_label("Search by URL or file name").fill("")
    expect(page.locator("#jobs-body tr")).to_have_count(2)
    page.get_by_label("Status").select_option("skipped")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    page.locator("#jobs-body tr").first.click()
    detail = page.locator("#job-detail")
    expect(detail).to_contain_text("The downloaded file is not a media file")
    page.get_by_label("Status").select_option("completed")
    page.locator("#jobs-body tr").first.click()
    expect(detail.get_by_role("link", name="Download")).to_be_visible()
    screenshots(page, "jobs")


def test_batches_show_progress_and_episodes(
    page: Page, live_server: str, api_key: str, worker: Worker, media: MediaServer
) -> None:
    feed = media.url("feed/show.rss?episodes=tiny.mp4,long.mp4")
    created = httpx.post(
        live_server + "/jobs", headers={"x-api-key": api_key}, json={"url": feed}, timeout=60
    ).json()
    drain(worker)
    sign_in(page, live_server, api_key)
    page.get_by_role("button", name="Batches").click()
    item = page.locator("#batch-list li").first
    expect(item).to_contain_text("2 completed · 0 failed · 2 episodes")
    item.get_by_role("button").click()
    expect(page.locator("#batch-detail tbody tr")).to_have_count(len(created["episode_jobs"]))
    screenshots(page, "batches")


def test_usage_range_picker_refuses_366_days_and_exports_csv(
    page: Page, live_server: str, api_key: str, worker: Worker, media: MediaServer, console_errors: list[str]
) -> None:
    submit(live_server, api_key, media.url("media/tiny.mp4"))
    drain(worker)
    sign_in(page, live_server, api_key)
    page.get_by_role("button", name="Usage").click()
    page.wait_for_selector("body[data-ready=usage]")
    expect(page.locator("#usage-totals")).to_contain_text("1 objects")
    screenshots(page, "usage")
    page.get_by_label("From", exact=True).fill("2024-01-01")
    page.get_by_label("To", exact=True).fill("2024-12-31")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#usage-error")).to_have_text(
        "Invalid period: 366 days from startDate to endDate; at most 365 are allowed"
    )
    assert console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    console_errors.clear()  # the browser's own note of the refused request, expected here
    page.get_by_label("From", exact=True).fill("2024-01-02")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#usage-error")).to_be_hidden()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("date,requests,bytesDownloaded,cacheHitRate,numberOfObjects,bytesStored")
    assert len(lines) == 1 + 365 and lines[1].startswith("2024-01-02,")


def test_refreshing_pauses_while_the_tab_is_hidden(
    page: Page, live_server: str, api_key: str, db: Database
) -> None:
    sign_in(page, live_server, api_key)
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
                  "document.dispatchEvent(new Event('visibilitychange'))")  # fmt: skip
    assert page.evaluate("state.timer") is None


def screenshots(page: Page, name: str) -> None:
    """Desktop and phone-sized pictures for the README (docs/screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(400)  # the charts resize on the next animation frames
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
