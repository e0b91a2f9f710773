"""The URL guard in front of an outbound proxy, inside the downloader child.

Through an HTTP proxy (or socks5h) the proxy resolves the target's name, out of sight of the
connect-time guard (guard.py), which then only sees the proxy's own address. So, when a proxy
is in use, every request's target is checked here before it is handed to the proxy: the first
request of every request handler, and each redirect the requests handler or the urllib handler
follows. The proxies themselves are operator configuration and trusted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from squall.errors import SquallError
from squall.pipeline.guard import BLOCKED_MARKER
from squall.pipeline.urlguard import UrlPolicy, resolve_checked

_WEBSOCKET_SCHEMES = {"ws": "http", "wss": "https"}


def check_target(url: str, policy: UrlPolicy) -> None:
    """Raise the guard's refusal unless every address ``url``'s host resolves to is allowed."""
    from yt_dlp.networking.exceptions import RequestError

    parts = urlsplit(url)
    scheme = _WEBSOCKET_SCHEMES.get(parts.scheme, parts.scheme)
    try:
        resolve_checked(urlunsplit(parts._replace(scheme=scheme)), policy)
    except SquallError as refused:
        raise RequestError(f"{BLOCKED_MARKER}: {refused.message} (checked before the proxy)") from None


def install(policy: UrlPolicy) -> None:
    import requests.adapters
    from yt_dlp.networking import _urllib
    from yt_dlp.networking.common import RequestDirector

    director_send = RequestDirector.send
    adapter_send = requests.adapters.HTTPAdapter.send
    redirect_request = _urllib.RedirectHandler.redirect_request

    def checked_director_send(self: Any, request: Any) -> Any:
        check_target(request.url, policy)
        return director_send(self, request)

    def checked_adapter_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        check_target(request.url, policy)  # every hop: requests follows redirects through here
        return adapter_send(self, request, *args, **kwargs)

    def checked_redirect(self: Any, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_target(newurl, policy)
        return redirect_request(self, req, fp, code, msg, headers, newurl)

    RequestDirector.send = checked_director_send  # type: ignore[method-assign]
    requests.adapters.HTTPAdapter.send = checked_adapter_send  # type: ignore[method-assign]
    _urllib.RedirectHandler.redirect_request = checked_redirect  # type: ignore[method-assign]
