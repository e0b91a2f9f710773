"""Extraction without download, in a downloader child (its own process group, the
connect-time SSRF guard) like a job's download: POST /metadata, and the entries of a feed or
playlist that becomes a batch."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from squall.errors import InvalidInput, JobFailure, TimedOut
from squall.pipeline.cookies import child_cookie_file
from squall.pipeline.download import downloader_context, failure_of
from squall.pipeline.failures import Classified
from squall.pipeline.proxies import proxy_order, through_proxies
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.warm_children import kill_group
from squall.pipeline.ytdlp_config import DownloaderConfig

# URLs that name a feed or a playlist; anything else is taken as one video.
_PLAYLIST_PATH = re.compile(
    r"(\.(rss|xml|atom)$)|(/(feed|feeds|rss|podcast|podcasts|playlist|playlists|show)(/|$))", re.I
)
_PLAYLIST_QUERY = re.compile(r"(^|&)list=", re.I)


class ExtractionTimeout(TimedOut):
    """The downloader child did not answer in time."""


def looks_like_playlist(url: str) -> bool:
    """A feed or playlist by its URL alone (no request is made): ``.rss``/``.xml`` files,
    ``/feed``, ``/playlist``, ``/show`` paths (Spotify shows, podcast hosts), ``list=``."""
    parts = urlsplit(url)
    return bool(_PLAYLIST_PATH.search(parts.path) or _PLAYLIST_QUERY.search(parts.query))


def fetch_metadata(
    url: str, *, policy: UrlPolicy, socket_timeout: float, timeout: float,
    downloader: DownloaderConfig | None = None, cookies: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What is known about ``url``, with the operator's downloader configuration and the
    key's own ``cookies`` (Netscape text), as a job's download would see it."""
    from squall.pipeline import ytdlp_child

    options = {"url_policy": policy, "socket_timeout": socket_timeout}
    return _through_proxies(ytdlp_child.metadata_main, url, options, timeout, "Metadata extraction",
                            downloader or DownloaderConfig(), cookies)  # fmt: skip


def fetch_entries(
    url: str, *, policy: UrlPolicy, socket_timeout: float, timeout: float, limit: int,
    downloader: DownloaderConfig | None = None, cookies: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``{"title", "entries": [{"url", "title", "size"}]}`` of a feed or playlist (``size``:
    the bytes the feed announces for the episode, or None); ``entries`` is
    None when the URL turned out to be a single video. Raises InvalidInput beyond ``limit``."""
    from squall.pipeline import ytdlp_child

    options = {"url_policy": policy, "socket_timeout": socket_timeout, "limit": limit}
    return _through_proxies(ytdlp_child.entries_main, url, options, timeout, "Reading the playlist",
                            downloader or DownloaderConfig(), cookies)  # fmt: skip


def _through_proxies(
    target: Callable[..., None], url: str, options: dict[str, Any], timeout: float, what: str,
    config: DownloaderConfig, cookies: str | None,
) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout

    def attempt(proxy: str | None) -> dict[str, Any]:
        child = {**options, "downloader": config, "proxy": proxy, "cookiefile": cookiefile}
        return ask_child(target, url, child, max(0.1, deadline - time.monotonic()), what)

    try:
        with child_cookie_file(config.cookies_file, cookies) as cookiefile:
            return through_proxies(proxy_order(config.proxies, secrets.token_hex(4)), attempt,
                                   time.sleep, config.proxy_backoff_seconds)  # fmt: skip
    except JobFailure as failure:
        raise InvalidInput(failure.message) from None


def ask_child(
    target: Callable[..., None], url: str, options: dict[str, Any], timeout: float, what: str
) -> dict[str, Any]:
    ctx = downloader_context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(sender, url, options))
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise ExtractionTimeout(f"{what} took longer than {timeout:g} seconds")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise JobFailure(f"{what} stopped unexpectedly") from None
        if kind == "failed":
            raise failure_of(Classified(**payload))
        return dict(payload)
    finally:
        kill_group(process)
        process.join(timeout=5)
        receiver.close()
