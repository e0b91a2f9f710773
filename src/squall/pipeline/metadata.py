"""Extraction without download, in a downloader child (its own process group, the
connect-time SSRF guard) like a job's download: POST /metadata, and the entries of a feed or
playlist that becomes a batch."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from squall.errors import InvalidInput, TimedOut
from squall.pipeline.download import downloader_context, kill_group
from squall.pipeline.failures import Classified
from squall.pipeline.urlguard import UrlPolicy

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


def fetch_metadata(url: str, *, policy: UrlPolicy, socket_timeout: float, timeout: float) -> dict[str, Any]:
    from squall.pipeline import ytdlp_child

    options = {"url_policy": policy, "socket_timeout": socket_timeout}
    return _ask_child(ytdlp_child.metadata_main, url, options, timeout, "Metadata extraction")


def fetch_entries(
    url: str, *, policy: UrlPolicy, socket_timeout: float, timeout: float, limit: int
) -> dict[str, Any]:
    """``{"title", "entries": [{"url", "title", "size"}]}`` of a feed or playlist (``size``:
    the bytes the feed announces for the episode, or None); ``entries`` is
    None when the URL turned out to be a single video. Raises InvalidInput beyond ``limit``."""
    from squall.pipeline import ytdlp_child

    options = {"url_policy": policy, "socket_timeout": socket_timeout, "limit": limit}
    return _ask_child(ytdlp_child.entries_main, url, options, timeout, "Reading the playlist")


def _ask_child(
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
            raise InvalidInput(f"{what} stopped unexpectedly") from None
        if kind == "failed":
            raise InvalidInput(Classified(**payload).message)
        return dict(payload)
    finally:
        kill_group(process)
        process.join(timeout=5)
        receiver.close()
