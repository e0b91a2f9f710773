"""The tenancy parts of the web pages in the real browser: the usage-alert banner on the
dashboard, and the operator page's own sign-in and tables. (Chromium, fixtures and the skip
without it: tests/web/test_dashboard.py.)"""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from squall.admin.tokens import create_token
from squall.clock import now_ms
from squall.db import Database
from squall.worker import Worker
from tests.support.helpers import TEST_SECRET, KeyFactory
from tests.web import test_dashboard as dashboard

# The dashboard tests' Chromium fixtures (and their skip, with its reason, when there is none).
browser, page, console_errors = dashboard.browser, dashboard.page, dashboard.console_errors
sign_in, submit = dashboard.sign_in, dashboard.submit

MB = 1024 * 1024


def test_a_quota_threshold_alert_shows_as_a_banner(
    page: Page, live_server: str, make_key: KeyFactory
) -> None:
    key, _ = make_key("Trial", storage_limit_bytes=4 * MB)  # each job reserves 1 MB: two are 50 %
    for _ in range(2):
        submit(live_server, key, "http://127.0.0.1:9/v.mp4")
    sign_in(page, live_server, key)
    banner = page.locator('[data-alert="usage.quota_threshold"]')
    expect(banner).to_have_text("Storage is at 50 % or more of this key's quota.")


def test_the_operator_page_signs_in_with_a_token_and_shows_the_tables(
    page: Page, live_server: str, make_key: KeyFactory, db: Database, worker: Worker
) -> None:
    keys = [make_key(f"client {n}")[0] for n in range(3)]
    for n, key in enumerate(keys):
        for _ in range(n + 1):
            submit(live_server, key, "http://127.0.0.1:9/v.mp4")
    worker.beat_if_due()  # this worker reports itself, as a running one does
    with db.write() as session:
        token = create_token(session, pepper=TEST_SECRET, name="ops", now=now_ms()).token
    page.goto(live_server + "/operator")
    page.get_by_label("Operator token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("body[data-ready=operator]")
    queue = httpx.get(live_server + "/admin/queue", headers={"Authorization": f"Bearer {token}"}).json()
    expect(page.locator("#keys-body tr")).to_have_count(3)
    expect(page.locator("#keys-body tr").first).to_contain_text("client 2")  # most jobs first
    expect(page.locator('[data-stat="pending"]')).to_have_text(str(queue["pending"]))
    assert queue["pending"] == 6
    expect(page.locator("#workers-body tr")).to_have_count(1)
    expect(page.locator("#workers-body tr")).to_contain_text("alive")
    expect(page.locator("#priority-body tr")).to_have_count(1)
    assert page.evaluate("state.charts.top.data.datasets[0].data") == [3, 2, 1]
