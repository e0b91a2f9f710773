"""Connect-time SSRF guard, installed inside the downloader child process only.

Every name the child resolves goes through ``socket.getaddrinfo``; non-public answers are
dropped there, so redirects, DNS rebinding and URLs found inside manifests are all covered.

Some streams (encrypted HLS, RTMP) make yt-dlp hand the download to an external program
such as FFmpeg, which resolves and connects on its own, out of this guard's sight. With the
guard on, those downloaders are refused. (Live HLS never gets there: ``live_hls`` records it
through yt-dlp's own opener, so through this guard.)"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from squall.pipeline.urlguard import UrlPolicy

BLOCKED_MARKER = "ssrf-guard"
EXTERNAL_MARKER = "external-downloader-refused"

_original_getaddrinfo = socket.getaddrinfo


def _guarded(policy: UrlPolicy, trusted: frozenset[tuple[str, str]]) -> Any:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        results = _original_getaddrinfo(host, *args, **kwargs)
        port = args[0] if args else kwargs.get("port")
        if (str(host).lower(), str(port)) in trusted:  # an operator's proxy, not a source
            return results
        allowed = [r for r in results if policy.permits(ipaddress.ip_address(str(r[4][0]).split("%")[0]))]
        if not allowed:
            raise socket.gaierror(
                f"{BLOCKED_MARKER}: {host} resolves to a private or local address (blocked)"
            )
        return allowed

    return getaddrinfo


def _refuse_external(self: Any, filename: str, info_dict: Any) -> bool:
    from yt_dlp.utils import DownloadError

    raise DownloadError(f"{EXTERNAL_MARKER}: this stream needs an external downloader")


def install(policy: UrlPolicy, trusted: frozenset[tuple[str, str]] = frozenset()) -> None:
    """``trusted``: the (host, port) of each outbound proxy, which may be a private address."""
    from yt_dlp.downloader.external import ExternalFD
    from yt_dlp.downloader.rtmp import RtmpFD

    socket.getaddrinfo = _guarded(policy, trusted)
    ExternalFD.real_download = _refuse_external  # type: ignore[method-assign]
    RtmpFD.real_download = _refuse_external  # type: ignore[method-assign]
