"""Warm downloader children: a child that ended a job cleanly runs the next job of the same
tenant and settings, and no other; anything else ends it. Real yt-dlp children, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from squall.errors import JobFailure
from squall.pipeline import warm_children
from squall.pipeline.download import download
from squall.pipeline.spec import JobSpec
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig
from tests.support.helpers import refused_as_private
from tests.support.server import MediaServer

OPEN = UrlPolicy(allow_private=True)
GUARDED = UrlPolicy.parse(allow_private=False, networks="127.0.0.2/32")


class Events:
    def step(self, name: str) -> None:
        pass

    def need_bytes(self, total_bytes: int, *, exact: bool = False) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def stop_requested(self) -> bool:
        return False

    def recording(self, seconds: float, size: int) -> None:
        pass

    def stored(self, key: str) -> None:
        pass


@pytest.fixture(autouse=True)
def no_idle_children() -> Iterator[None]:
    warm_children.close_idle()
    yield
    warm_children.close_idle()


def fetch(spec: JobSpec, tmp_path: Path) -> Path:
    workdir = tmp_path / spec.job_id
    workdir.mkdir()
    return Path(download(spec, workdir, Events()).path)


def spec_for(url: str, tenant: str | None, policy: UrlPolicy = OPEN, number: int = 1) -> JobSpec:
    return JobSpec(
        job_id=f"job-{tenant}-{number}", url=url, container="mp3", url_policy=policy, tenant=tenant
    )


def test_a_child_runs_the_next_job_of_its_tenant_and_never_another_tenants(
    media: MediaServer, tmp_path: Path
) -> None:
    url = media.url("media/tone.mp3")
    assert fetch(spec_for(url, "key-a"), tmp_path).stat().st_size > 0
    (first,) = warm_children.idle_pids()
    assert fetch(spec_for(url, "key-a", number=2), tmp_path).stat().st_size > 0
    assert warm_children.idle_pids() == [first]  # the same process ran the second job
    assert fetch(spec_for(url, "key-b"), tmp_path).stat().st_size > 0
    idle = warm_children.idle_pids()
    assert len(idle) == 2 and first in idle  # key-b got a child of its own


def test_the_same_tenant_with_other_settings_gets_another_child(media: MediaServer, tmp_path: Path) -> None:
    spec = spec_for(media.url("media/tone.mp3"), "key-a")
    fetch(spec, tmp_path)
    configured = DownloaderConfig(options={"http_headers": {"X-Operator": "yes"}})
    for other in (
        warm_children.Identity("key-a", "http://127.0.0.1:9", OPEN, spec.downloader),  # a proxy
        warm_children.Identity("key-a", None, GUARDED, spec.downloader),  # another URL policy
        warm_children.Identity("key-a", None, OPEN, configured),  # other yt-dlp options
    ):
        assert warm_children.take(other) is None
    assert len(warm_children.idle_pids()) == 1


def test_without_a_tenant_a_child_runs_one_job(media: MediaServer, tmp_path: Path) -> None:
    assert fetch(spec_for(media.url("media/tone.mp3"), None), tmp_path).stat().st_size > 0
    assert warm_children.idle_pids() == []


def test_a_failed_job_ends_its_child(media: MediaServer, tmp_path: Path) -> None:
    fetch(spec_for(media.url("media/tone.mp3"), "key-a"), tmp_path)
    (child,) = warm_children.idle_pids()
    with pytest.raises(JobFailure):
        fetch(spec_for(media.url("media/missing.mp3"), "key-a", number=2), tmp_path)
    assert warm_children.idle_pids() == []  # the child that failed is not kept
    fetch(spec_for(media.url("media/tone.mp3"), "key-a", number=3), tmp_path)
    assert warm_children.idle_pids() not in ([], [child])  # a fresh child for the next job


def test_the_guard_holds_in_a_reused_child(media_dir: Path, media: MediaServer, tmp_path: Path) -> None:
    """The reused child still refuses a redirect to loopback (the guard is per process, so it
    was installed once, when the child started)."""
    with MediaServer(media_dir, host="127.0.0.2") as allowed:
        fetch(spec_for(allowed.url("media/tone.mp3"), "key-a", GUARDED), tmp_path)
        assert len(warm_children.idle_pids()) == 1
        redirect = allowed.url(f"redirect?to={media.url('media/tone.mp3')}")
        with pytest.raises(JobFailure) as refused:
            fetch(replace(spec_for(redirect, "key-a", GUARDED), job_id="redirected"), tmp_path)
    assert str(refused.value) == refused_as_private("The URL (or a redirect or stream it leads to)")
    assert warm_children.idle_pids() == []
