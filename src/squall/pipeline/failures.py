"""Sort downloader failures into what a client can act on.

yt-dlp wraps the real cause: ``DownloadError.exc_info[1]`` or ``ExtractorError.cause`` holds
the HTTPError/TransportError, so the chain is walked and typed causes win over message text.
Messages are for people and never name the tool ("downloader" instead)."""

from __future__ import annotations

import errno
import re
import socket
from dataclasses import dataclass

from squall.pipeline.urlguard import private_address_refused
from squall.units import human_bytes


@dataclass(frozen=True)
class Classified:
    message: str
    outcome: str = "Failed"  # Failed, Warning or Skipped
    retryable: bool = False
    client_blamed: bool = False  # rate limit or bot check: another proxy may get through


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: set[int] = set()
    out: list[BaseException] = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        info = getattr(exc, "exc_info", None)
        nxt = info[1] if isinstance(info, tuple) and len(info) > 1 and info[1] is not exc else None
        cause = getattr(exc, "cause", None)
        exc = nxt or (cause if isinstance(cause, BaseException) else None) or exc.__cause__ or exc.__context__
    return out


# The "Rate limiting" failure class (seed 000): the source refused this server's downloads.
RATE_LIMITED = "The source is rate limiting downloads (HTTP 429)"
BOT_CHECK = "The source is rate limiting downloads: it asked to confirm this is not a bot"

# A full work directory: retried within the job's attempts (other jobs' files may be gone by then).
DISK_FULL = "Not enough disk space in the work directory"


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain, or in a message (the downloader and FFmpeg report it as text)."""
    chain = _chain(exc)
    if any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain):
        return True
    return any("no space left on device" in str(e).lower() for e in chain)


TOOL_NAMES = ("yt-dlp", "YT-DLP", "yt_dlp", "youtube-dl", "youtube_dl")


def scrub_tool_names(text: str) -> str:
    """Messages for clients say "downloader", never the tool's name."""
    for name in TOOL_NAMES:
        text = text.replace(name, "downloader")
    return text


def clean(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("ERROR: ", "")
    return scrub_tool_names(text).strip()[:500]


def too_long(seconds: float, limit: int) -> str:
    """The message of a source longer than the key's duration limit."""
    return f"Video is {seconds:.0f} seconds long; this API key allows at most {limit} seconds"


def too_large(size: int, limit: int) -> str:
    """The message of an output larger than the key's size limit."""
    return f"File is {human_bytes(size)}; this API key allows at most {human_bytes(limit)}"


def classify(exc: BaseException) -> Classified:
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import GeoRestrictedError, UnsupportedError

    chain = _chain(exc)
    text = " | ".join(str(e) for e in chain).lower()
    if is_disk_full(exc):
        return Classified(DISK_FULL, retryable=True)
    if "ssrf-guard" in text:
        return Classified(private_address_refused("The URL (or a redirect or stream it leads to)"))
    if "external-downloader-refused" in text:
        return Classified(
            "This kind of stream (encrypted HLS, RTMP) is not supported: it needs a program that "
            "connects on its own, where the URL guard cannot check the addresses it reaches"
        )
    for error in chain:
        if isinstance(error, HTTPError):
            status = error.status
            if status == 429:
                return Classified(RATE_LIMITED, retryable=True, client_blamed=True)
            if status in (401, 403, 404, 410, 451):
                return Classified(f"Video unavailable (the source answered HTTP {status})", outcome="Warning")
            if status >= 500:
                return Classified(f"The source failed (HTTP {status})", retryable=True)
        if isinstance(error, GeoRestrictedError):
            return Classified("Video is not available in this region (geo-blocked)", outcome="Warning")
        if isinstance(error, UnsupportedError):
            return Classified("Unsupported URL: no video or audio was found at this address")
        if isinstance(error, TransportError | TimeoutError | socket.timeout | ConnectionError):
            return Classified(
                "Network error while downloading (timeout or connection failure)", retryable=True
            )
    if re.search(r"sign in to confirm you.?re not a bot|confirm you are not a bot|captcha", text):
        return Classified(BOT_CHECK, retryable=True, client_blamed=True)
    if re.search(
        r"private video|video unavailable|has been removed|members.only|sign in to confirm your age",
        text,
    ):
        return Classified(clean(str(exc)), outcome="Warning")
    if re.search(r"timed out|connection (reset|refused|aborted)|giving up after \d+ retries", text):
        return Classified("Network error while downloading (timeout or connection failure)", retryable=True)
    if re.search(r"unsupported url|no video formats found|requested format is not available", text):
        return Classified(clean(str(exc)))
    return Classified(clean(str(exc)) or "The download failed")
