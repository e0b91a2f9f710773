"""Which yt-dlp, yt-dlp-ejs, JavaScript runtime, FFmpeg and plugins this Squall downloads with.
The runtime and the plugins are reported by a downloader child itself: what a job sees."""

from __future__ import annotations

import datetime as dt
import subprocess
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any

from squall.pipeline.binaries import ffmpeg_path
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig, runtime_executable


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def ytdlp_release(today: dt.date) -> dict[str, Any]:
    """yt-dlp's version and its age in days (its versions are its release dates)."""
    from yt_dlp.version import __version__

    year, month, day = (int(part) for part in __version__.split(".")[:3])
    released = dt.date(year, month, day)
    return {"version": __version__, "released": released.isoformat(), "age_days": (today - released).days}


def run_version(command: list[str]) -> str:
    """The first line ``command`` prints. Raises OSError or CalledProcessError if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=True)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def js_runtime_facts(config: DownloaderConfig) -> dict[str, Any]:
    """The configured runtime, where it is, and whether it runs (``--version``)."""
    name = next(iter(config.js_runtimes), None)
    if name is None:
        return {"name": None, "path": None, "version": None, "runs": False}
    path = runtime_executable(config.js_runtimes)
    try:
        version = run_version([path, "--version"]) if path else None
    except (OSError, subprocess.SubprocessError):
        version = None
    return {"name": name, "path": path, "version": version, "runs": version is not None}


def ffmpeg_facts() -> dict[str, Any]:
    import imageio_ffmpeg

    path = ffmpeg_path()
    try:
        bundled = path == str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        bundled = False
    try:
        version: str | None = run_version([path, "-hide_banner", "-version"])
    except (OSError, subprocess.SubprocessError):
        version = None
    return {
        "path": path,
        "version": version,
        "build": "wheel" if bundled else "system",
        "runs": bool(version),
    }


def child_report(config: DownloaderConfig, *, timeout: float = 60.0) -> dict[str, Any]:
    """What a downloader child reports: its yt-dlp, the JS runtimes yt-dlp found (name,
    version) and the plugins it loaded."""
    from squall.pipeline.metadata import ask_child

    options = {"url_policy": UrlPolicy(), "downloader": config, "socket_timeout": 20.0}
    return ask_child(report_main, "", options, timeout, "The downloader's report")


def report_main(conn: Connection, _url: str, options: dict[str, Any]) -> None:
    """Child-process entry of ``child_report``."""
    from squall.pipeline import ytdlp_child

    ytdlp_child._run_child(conn, options, lambda: _report(options))


def _report(options: dict[str, Any]) -> dict[str, Any]:
    import yt_dlp
    from yt_dlp.globals import plugin_ies, plugin_pps
    from yt_dlp.version import __version__

    from squall.pipeline import ytdlp_child

    with yt_dlp.YoutubeDL(ytdlp_child._base_options(options)) as ydl:
        runtimes = {
            name: {"name": rt.info.name, "version": rt.info.version, "supported": rt.info.supported}
            if rt is not None and rt.info is not None
            else None
            for name, rt in ydl._js_runtimes.items()
        }
    plugins = sorted({*plugin_ies.value, *plugin_pps.value})
    return {"ytdlp_version": __version__, "js_runtimes": runtimes, "plugins": plugins}
