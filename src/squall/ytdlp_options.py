"""The checks of the downloader settings (``SQUALL_YTDLP_OPTIONS``, ``SQUALL_JS_RUNTIME``,
``SQUALL_PROXIES``), run when the settings load, so a bad value stops start-up with a message
that names it."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

# Downloader options that would get past the sandbox or the URL guard (other programs, hooks,
# files outside the work folder, browsers' cookies, downloads at run time), or that have a
# setting of their own (proxy, cookies, JavaScript runtime).
FORBIDDEN_YTDLP_OPTIONS = frozenset({
    "external_downloader", "external_downloader_args", "postprocessors", "postprocessor_hooks",
    "progress_hooks", "post_hooks", "exec_cmd", "exec_before_dl_cmd", "netrc_cmd", "outtmpl",
    "paths", "cachedir", "download_archive", "load_info_filename", "cookiesfrombrowser",
    "cookiefile", "proxy", "geo_verification_proxy", "impersonate", "enable_file_urls",
    "download_ranges", "plugin_dirs", "js_runtimes", "remote_components", "ffmpeg_location",
    "logger", "match_filter", "hls_prefer_native",
})  # fmt: skip
JS_RUNTIMES = {"deno": "deno", "node": "node", "nodejs": "node", "bun": "bun", "qjs": "quickjs",
               "quickjs": "quickjs"}  # fmt: skip
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def ytdlp_options_of(text: str) -> dict[str, object]:
    """``SQUALL_YTDLP_OPTIONS``: a JSON object without the forbidden options."""
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"must be a JSON object: {exc}") from None
    if not isinstance(options, dict):
        raise ValueError('must be a JSON object such as {"extractor_args": {...}}')
    refused = sorted(FORBIDDEN_YTDLP_OPTIONS & options.keys())
    if refused:
        raise ValueError(f"these options would defeat the sandbox or the URL guard, or have a "
                         f"setting of their own, and are refused: {', '.join(refused)}")  # fmt: skip
    return options


def js_runtime_name(choice: str) -> str | None:
    """Which runtime ``SQUALL_JS_RUNTIME`` names (None: none), from a name or a path's file name."""
    choice = choice.strip()
    if choice.lower() == "none":
        return None
    if not choice:
        return "deno"
    base = Path(choice).name.lower()
    for prefix in sorted(JS_RUNTIMES, key=len, reverse=True):
        if base.startswith(prefix):
            return JS_RUNTIMES[prefix]
    raise ValueError(f"'{choice}' is not deno, node, bun, quickjs, a path to one of them, or none")


def proxy_list(text: str) -> tuple[str, ...]:
    """``SQUALL_PROXIES``: comma-separated proxy URLs (http, https, socks4, socks5)."""
    proxies = tuple(filter(None, (part.strip() for part in text.split(","))))
    for proxy in proxies:
        parts = urlsplit(proxy)
        if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
            raise ValueError(f"'{proxy}' is not a proxy URL such as http://host:3128 or socks5://host:1080")
    return proxies
