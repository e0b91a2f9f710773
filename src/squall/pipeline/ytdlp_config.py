"""The operator's downloader configuration, as plain data handed to every downloader child:
yt-dlp's JavaScript runtime, the operator's extra options, cookie file, outbound proxies and
plugin folders. Built once from the settings (which have already refused unsafe options)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from squall.settings import Settings
from squall.ytdlp_options import js_runtime_name, proxy_list, ytdlp_options_of


@lru_cache
def bundled_deno() -> str | None:
    """The Deno binary the ``deno`` wheel installed next to this interpreter, if any."""
    try:
        import deno

        return str(deno.find_deno_bin())
    except (ImportError, FileNotFoundError):
        return None


def js_runtimes_option(choice: str) -> dict[str, dict[str, str]]:
    """yt-dlp's ``js_runtimes`` for ``SQUALL_JS_RUNTIME``: ``{}`` for none, ``{name: {}}`` for
    a runtime looked up on PATH, ``{name: {"path": ...}}`` for a file."""
    name = js_runtime_name(choice)
    if name is None:
        return {}
    choice = choice.strip()
    if not choice:
        found = bundled_deno()
        return {"deno": {"path": found} if found else {}}
    if "/" not in choice:  # a bare name: the one on PATH
        return {name: {}}
    return {name: {"path": choice}}


def runtime_executable(runtimes: dict[str, dict[str, str]]) -> str | None:
    """The file the configured runtime runs from (None: none configured, or none on PATH)."""
    for name, config in runtimes.items():
        if config.get("path"):
            return config["path"]
        return shutil.which({"quickjs": "qjs"}.get(name, name))
    return None


@dataclass(frozen=True)
class DownloaderConfig:
    js_runtimes: dict[str, dict[str, str]] = field(default_factory=lambda: js_runtimes_option(""))
    options: dict[str, Any] = field(default_factory=dict)  # the operator's SQUALL_YTDLP_OPTIONS
    cookies_file: str | None = None  # the operator's Netscape cookie file
    proxies: tuple[str, ...] = ()
    proxy_backoff_seconds: float = 2.0
    plugin_dirs: tuple[str, ...] = ()


def downloader_config(settings: Settings) -> DownloaderConfig:
    return DownloaderConfig(
        js_runtimes=js_runtimes_option(settings.js_runtime),
        options=ytdlp_options_of(settings.ytdlp_options),
        cookies_file=str(settings.cookies_file) if settings.cookies_file else None,
        proxies=proxy_list(settings.proxies),
        proxy_backoff_seconds=settings.proxy_backoff_seconds,
        plugin_dirs=tuple(filter(None, (p.strip() for p in settings.ytdlp_plugin_dirs.split(",")))),
    )
