"""Outbound proxies: real pproxy processes on 127.0.0.1 in front of a local source that can
tell whose connection it got (tests/support/gated.py)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from squall.db import Database
from squall.errors import InvalidInput
from squall.pipeline.metadata import fetch_metadata
from squall.pipeline.proxies import ClientBlamed, proxy_order, through_proxies
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig
from squall.settings import Settings
from squall.storage.local import LocalStorage
from squall.worker import Worker
from tests.support.gated import GatedSource
from tests.support.helpers import drain
from tests.support.proxies import LocalProxy, local_proxy

GUARDED = UrlPolicy.parse(allow_private=False, networks="127.0.0.2/32")  # the guard on; one source allowed


def run_through(
    client: TestClient, key: str, settings: Settings, db: Database, storage: LocalStorage, url: str,
    proxies: list[LocalProxy],
) -> dict[str, Any]:  # fmt: skip
    """Submit, then run the job on a worker whose proxy list starts with ``proxies[0]`` for it."""
    job_id = client.post("/jobs", headers={"x-api-key": key}, json={"url": url}).json()["job_id"]
    start = zlib.crc32(job_id.encode()) % len(proxies)  # the one proxy_order picks first
    ordered = proxies[-start:] + proxies[:-start] if start else proxies
    configured = settings.model_copy(
        update={
            "proxies": ",".join(p.url for p in ordered),
            "proxy_backoff_seconds": 0,
            "socket_timeout_seconds": 10,
        }
    )
    worker = Worker(configured, db=db, storage=storage)
    for _ in range(100):  # a retry is due "now" by the worker's clock, a hair later by the database's
        drain(worker)
        job = dict(client.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json())
        if job["status"] not in ("Pending", "Processing"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job did not end: {job}")


def test_a_job_goes_through_its_proxy_and_moves_on_when_the_source_refuses_that_proxy(
    client: TestClient, api_key: str, settings: Settings, db: Database, storage: LocalStorage, media_dir: Path
) -> None:
    with (
        local_proxy() as refused,
        local_proxy("socks5") as accepted,
        GatedSource(media_dir, rate_limited={refused.pid}, watched={accepted.pid}) as source,
    ):
        job = run_through(
            client, api_key, settings, db, storage, source.url("media/tiny.mp4"), [refused, accepted]
        )
    assert job["status"] == "Completed", job
    assert (source.seen[0].owner, source.seen[0].status) == (refused.pid, 429)  # the first pick
    assert any(seen.owner == accepted.pid and seen.status == 200 for seen in source.seen)
    # every connection the source saw was a proxy's, never the worker's own
    assert {seen.owner for seen in source.seen} == {refused.pid, accepted.pid}


def test_when_every_proxy_is_refused_the_job_fails_as_rate_limited(
    client: TestClient, api_key: str, settings: Settings, db: Database, storage: LocalStorage, media_dir: Path
) -> None:
    with (
        local_proxy() as first,
        local_proxy() as second,
        GatedSource(media_dir, rate_limited={first.pid, second.pid}) as source,
    ):
        job = run_through(
            client, api_key, settings, db, storage, source.url("media/tiny.mp4"), [first, second]
        )
    assert (job["status"], job["error"]) == ("Failed", "The source is rate limiting downloads (HTTP 429)")
    # Both proxies were tried. An owner of None is a connection whose client had already given
    # up (a timeout on a loaded machine) when the source looked it up; a direct connection
    # would have downloaded the file, and the job would not have failed as rate limited.
    assert {seen.owner for seen in source.seen} - {None} == {first.pid, second.pid}


def test_the_guard_checks_the_target_and_each_redirect_before_the_proxy(media_dir: Path) -> None:
    with (
        local_proxy() as proxy,
        GatedSource(media_dir, host="127.0.0.2") as allowed,
        GatedSource(media_dir) as private,
    ):
        allowed.watched.add(proxy.pid)
        config = DownloaderConfig(proxies=(proxy.url,), proxy_backoff_seconds=0)

        def metadata(url: str) -> dict[str, Any]:
            return fetch_metadata(url, policy=GUARDED, socket_timeout=3, timeout=60, downloader=config)

        assert metadata(allowed.url("media/tiny.mp4"))["extractor"] == "generic"  # guard on, proxy used
        with pytest.raises(InvalidInput, match="private or local address"):
            metadata(private.url("media/tiny.mp4"))
        with pytest.raises(InvalidInput, match="private or local address"):
            metadata(allowed.url(f"redirect?to={private.url('media/tiny.mp4')}"))
    assert private.seen == []  # never reached, not even through the proxy
    assert [seen.status for seen in allowed.seen if seen.path.startswith("/redirect")] == [302]
    assert {seen.owner for seen in allowed.seen} == {proxy.pid}  # the allowed source, through the proxy


def test_proxy_order_starts_at_the_jobs_pick_and_tries_each_once() -> None:
    proxies = ("http://a:1", "http://b:2", "http://c:3")
    order = proxy_order(proxies, "some-job")
    assert sorted(p or "" for p in order) == sorted(proxies)
    assert order == proxy_order(proxies, "some-job")  # the same job picks the same one
    assert proxy_order((), "x") == [None]

    tried: list[str | None] = []
    waits: list[float] = []

    def refused(proxy: str | None) -> str:
        tried.append(proxy)
        raise ClientBlamed("The source is rate limiting downloads (HTTP 429)", retryable=True)

    with pytest.raises(ClientBlamed):
        through_proxies(order, refused, waits.append, 1.5)
    assert tried == order and waits == [1.5, 3.0]  # backoff doubles between proxies
