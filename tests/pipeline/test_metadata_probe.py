"""POST /metadata of a direct media file: duration, frame size and file size measured by
probing the file over HTTP range reads, inside the downloader child and its guard."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from yt_dlp import YoutubeDL

from squall.pipeline.remote_probe import probe_remote, yt_dlp_fetch
from squall.settings import Settings
from tests.support.helpers import refused_as_private
from tests.support.server import MediaServer

KIB = 1024


@pytest.fixture
def allowed_host(media_dir: Path) -> Iterator[MediaServer]:
    """On 127.0.0.2: private, but a network the guarded tests allow."""
    with MediaServer(media_dir, host="127.0.0.2") as server:
        yield server


@pytest.mark.parametrize(
    ("name", "seconds", "width", "height"),
    [("tiny.mp4", 2, 320, 180), ("index-at-end.mp4", 2, 320, 180), ("tone.mp3", 3, None, None)],
)
def test_a_direct_file_is_measured(
    client: TestClient, api_key: str, media: MediaServer, media_dir: Path,
    name: str, seconds: float, width: int | None, height: int | None,
) -> None:  # fmt: skip
    response = client.post(
        "/metadata", headers={"x-api-key": api_key}, json={"url": media.url(f"media/{name}")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["duration"] == pytest.approx(seconds, abs=0.1)
    assert (body["width"], body["height"]) == (width, height)
    assert body["filesize_approx"] == (media_dir / name).stat().st_size
    assert body["extractor"] == "generic"


def test_the_probe_reads_ranges_within_its_budget(media: MediaServer, media_dir: Path) -> None:
    """An MP4 whose index follows the media is measured from a few blocks, not the file;
    with too small a budget only the size (from Content-Range) is known."""
    url = media.url("media/index-at-end.mp4")
    size = (media_dir / "index-at-end.mp4").stat().st_size
    with YoutubeDL({"quiet": True, "proxy": ""}) as ydl:
        before = len(media.requests)
        found = probe_remote(yt_dlp_fetch(ydl, url, None), block=4 * KIB)
        requests = len(media.requests) - before
        starved = probe_remote(yt_dlp_fetch(ydl, url, None), block=4 * KIB, max_bytes=4 * KIB)
    assert (found["width"], found["height"], found["filesize_approx"]) == (320, 180, size)
    assert requests > 1 and requests * 4 * KIB < size / 2
    assert starved == {"filesize_approx": size}


def test_a_page_is_not_measured(media: MediaServer) -> None:
    with YoutubeDL({"quiet": True, "proxy": ""}) as ydl:
        found = probe_remote(yt_dlp_fetch(ydl, media.url("media/page.html"), None))
    assert set(found) == {"filesize_approx"}


GUARDED_PROBE = """
import sys
from yt_dlp import YoutubeDL
from squall.pipeline import guard
from squall.pipeline.remote_probe import probe_remote, yt_dlp_fetch
from squall.pipeline.urlguard import UrlPolicy
guard.install(UrlPolicy.parse(allow_private=False, networks="127.0.0.2/32"))
with YoutubeDL({"quiet": True, "proxy": ""}) as ydl:
    for url in sys.argv[1:]:
        print(sorted(probe_remote(yt_dlp_fetch(ydl, url, None))))
"""


def test_the_probe_connects_only_where_the_guard_allows(
    allowed_host: MediaServer, media_dir: Path, tmp_path: Path
) -> None:
    """Under the child's guard (in its own interpreter: the guard is process-wide), the probe
    of a loopback URL makes no request at all; one on the allowed network is measured."""
    with MediaServer(media_dir) as loopback:
        urls = [loopback.url("media/tiny.mp4"), allowed_host.url("media/tiny.mp4")]
        out = subprocess.run(
            [sys.executable, "-c", GUARDED_PROBE, *urls], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert loopback.requests == []
    assert out.stdout.splitlines() == ["[]", "['duration', 'filesize_approx', 'height', 'width']"]


def test_metadata_under_the_guard(
    client: TestClient, settings: Settings, api_key: str, media: MediaServer, allowed_host: MediaServer
) -> None:
    """With private addresses refused: a file on an allowed network is measured; loopback,
    directly or through a redirect, is refused with words that say how to allow it."""
    settings.allow_private_urls, settings.allowed_private_networks = False, "127.0.0.2/32"
    headers = {"x-api-key": api_key}
    allowed = client.post("/metadata", headers=headers, json={"url": allowed_host.url("media/tiny.mp4")})
    assert allowed.status_code == 200, allowed.text
    assert (allowed.json()["width"], allowed.json()["height"]) == (320, 180)
    direct = client.post("/metadata", headers=headers, json={"url": media.url("media/tiny.mp4")})
    assert direct.status_code == 400 and direct.json() == {"error": refused_as_private("url")}
    redirected = allowed_host.url(f"redirect?to={media.url('media/tiny.mp4')}")
    bounced = client.post("/metadata", headers=headers, json={"url": redirected})
    assert bounced.status_code == 400
    assert bounced.json() == {"error": refused_as_private("The URL (or a redirect or stream it leads to)")}
