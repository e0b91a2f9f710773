"""Connect-time SSRF guard, installed inside the downloader child process only.

Every name the child resolves goes through ``socket.getaddrinfo``; non-public answers are
dropped there, so redirects, DNS rebinding and URLs found inside manifests are all covered."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from squall.pipeline.urlguard import is_public

_original_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    results = _original_getaddrinfo(host, *args, **kwargs)
    allowed = [r for r in results if is_public(ipaddress.ip_address(str(r[4][0]).split("%")[0]))]
    if not allowed:
        raise socket.gaierror(f"ssrf-guard: {host} resolves to a private or local address (blocked)")
    return allowed


def install() -> None:
    socket.getaddrinfo = _guarded_getaddrinfo
