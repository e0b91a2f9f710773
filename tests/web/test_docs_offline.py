"""/docs and /redoc in the real browser the dashboard tests use, with every request the page
makes recorded: the pages must render from Squall's own assets, no request leaving the machine."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, expect, sync_playwright

from tests.web.test_dashboard import ARGS, CHROMIUM  # skips this module too when there is no Chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def offline(browser: Browser) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A browser context that records every request and lets only those to 127.0.0.1 through."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []

    def guard(route: Route) -> None:
        requested.append(route.request.url)
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    yield context, requested
    context.close()


def leaving(requested: list[str]) -> list[str]:
    return [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]


def test_swagger_ui_renders_offline_and_tries_a_call_with_a_key(
    offline: tuple[BrowserContext, list[str]], live_server: str, api_key: str
) -> None:
    context, requested = offline
    page = context.new_page()
    page.goto(live_server + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Squall")
    page.get_by_role("button", name="Authorize").first.click()
    page.get_by_label("Value:").fill(api_key)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".auth-btn-wrapper .btn-done").click()
    operation = page.locator(".opblock-get", has=page.locator('[data-path="/usage"]')).first
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    expect(operation.locator(".live-responses-table tbody .microlight").first).to_contain_text(
        '"client_name"'
    )
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in requested)
    assert leaving(requested) == []


def test_redoc_renders_offline(offline: tuple[BrowserContext, list[str]], live_server: str) -> None:
    context, requested = offline
    page = context.new_page()
    page.goto(live_server + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Squall")
    expect(page.get_by_text("Usage, quota and limits of the calling key").first).to_be_attached()
    assert any(url.endswith("/docs-assets/redoc.standalone.js") for url in requested)
    assert leaving(requested) == []
