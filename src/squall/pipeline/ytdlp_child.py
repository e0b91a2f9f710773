"""The code that runs inside the downloader child process (imported by the forkserver)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yt_dlp

from squall.pipeline import guard, live_child, proxy_guard, remote_probe
from squall.pipeline.failures import Classified, classify, too_large, too_long
from squall.pipeline.feeds import enclosure_lengths
from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.warm_children import IDLE_EXIT_SECONDS
from squall.pipeline.ytdlp_config import DownloaderConfig

_INFO_FIELDS = (
    "title",
    "description",
    "upload_date",
    "duration",
    "width",
    "height",
    "vcodec",
    "acodec",
    "extractor",
    "ext",
    "webpage_url",
)

LIVE_NOT_WANTED = (
    "This URL is a live stream and the job set live_recording to false; "
    "send live_recording: true (or leave it out) to record it"
)

PREFERRED_CODECS = {
    "mp4": ["vcodec:h264", "acodec:aac"],
    "mov": ["vcodec:h264", "acodec:aac"],
    "webm": ["vcodec:vp9", "acodec:opus"],
    "m4a": ["acodec:aac"],
    "mp3": ["acodec:mp3"],
    "ogg": ["acodec:opus"],
    "opus": ["acodec:opus"],
}


class _Stop(yt_dlp.utils.DownloadCancelled):
    """Raised from a progress hook to stop a download with our own reason."""

    def __init__(self, failure: Classified) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _QuietLogger:
    """Without a logger yt-dlp prints errors to stderr even when quiet; errors reach us as
    exceptions anyway."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


def _too_long(seconds: float, limit: int) -> Classified:
    return Classified(too_long(seconds, limit))


def _too_large(size: int, limit: int) -> Classified:
    return Classified(too_large(size, limit))


def _run_child(conn: Connection, options: dict[str, Any], work: Callable[[], dict[str, Any]]) -> None:
    """A child for one piece of work: its setup, then one answer on ``conn``."""
    _setup(options)
    try:
        _answer(conn, work)
    finally:
        conn.close()


def _setup(options: dict[str, Any]) -> None:
    """What every child does once, for its whole life: its own process group (the parent kills
    it whole, FFmpeg included), the connect-time guard, and the operator's plugins."""
    os.setpgrp()
    policy: UrlPolicy = options["url_policy"]
    proxy: str | None = options.get("proxy")
    if not policy.allow_private:
        guard.install(policy, trusted=_endpoint(proxy))
        if proxy:  # the proxy resolves the target's name: check it before handing it over
            proxy_guard.install(policy)
    _use_plugins(_config(options))


def _answer(conn: Connection, work: Callable[[], dict[str, Any]]) -> None:
    """One answer on ``conn``: ("done", result) or ("failed", reason)."""
    try:
        conn.send(("done", work()))
    except (_Stop, live_child.LiveStop) as stop:
        conn.send(("failed", stop.failure.__dict__))
    except BaseException as exc:  # report everything; the parent decides what it means
        conn.send(("failed", classify(exc).__dict__))


def _config(options: dict[str, Any]) -> DownloaderConfig:
    return options.get("downloader") or DownloaderConfig()


def _endpoint(proxy: str | None) -> frozenset[tuple[str, str]]:
    if not proxy:
        return frozenset()
    parts = urlsplit(proxy)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 1080)
    return frozenset({(str(parts.hostname).lower(), str(port))})


def _use_plugins(config: DownloaderConfig) -> None:
    """Installed plugin packages and the operator's plugin folders; yt-dlp loads them when
    the first YoutubeDL is made (never in the forkserver, so each child sees the setting)."""
    from yt_dlp.globals import plugin_dirs

    plugin_dirs.value = ["default", *config.plugin_dirs]


def _base_options(options: dict[str, Any]) -> dict[str, Any]:
    config = _config(options)
    cookies = {"cookiefile": options["cookiefile"]} if options.get("cookiefile") else {}
    return {
        **config.options,  # the operator's, already checked; everything below wins
        **cookies,
        "js_runtimes": config.js_runtimes,
        "remote_components": [],  # nothing is downloaded at run time
        "logger": _QuietLogger(),
        "quiet": True,
        "noprogress": True,
        "no_warnings": True,
        "color": "no_color",
        "noplaylist": True,
        "cachedir": False,
        "socket_timeout": options["socket_timeout"],
        "extractor_retries": 1,
        "proxy": options.get("proxy") or "",  # "": no proxy, not even the environment's
    }


def _single_video(info: dict[str, Any]) -> None:
    if info.get("_type", "video") != "video":
        raise _Stop(
            Classified(
                "This URL holds several videos (a playlist or feed) that its address did not show; "
                "submit the entries with POST /jobs/bulk"
            )
        )


def serve(conn: Connection, control: Connection, options: dict[str, Any]) -> None:
    """Child-process entry for downloads: the process-wide setup for ``options`` (the guard for
    its URL policy and proxy, the operator's plugins), then one job for each ``("job", url,
    workdir, job_options)`` on ``control``, answered on ``conn``, one at a time, each with its
    own ``YoutubeDL``. The parent keeps a child only for further jobs of the same tenant and
    settings (``warm_children``); it ends when ``control`` closes or stays idle too long."""
    _setup(options)
    try:
        while control.poll(IDLE_EXIT_SECONDS):
            message = control.recv()
            if message[0] != "job":  # a late answer meant for the last job's recording
                continue
            _, url, workdir, job_options = message
            each = {**options, **job_options, "control": control}
            _answer(conn, partial(_download, conn, url, Path(workdir), each))
    except EOFError:  # the parent has gone
        pass
    finally:
        conn.close()


def _download(conn: Connection, url: str, workdir: Path, options: dict[str, Any]) -> dict[str, Any]:
    max_filesize: int | None = options["max_filesize"]
    sizes: dict[str, int] = {}
    last_report = 0.0

    def on_progress(update: dict[str, Any]) -> None:
        nonlocal last_report
        name = str(update.get("filename") or update.get("tmpfilename") or "")
        done = int(update.get("downloaded_bytes") or 0)
        total = int(update.get("total_bytes") or update.get("total_bytes_estimate") or 0)
        sizes[name] = max(done, total if update["status"] == "finished" else done)
        expected = sum(sizes.values()) + max(0, total - done)
        if max_filesize and expected > max_filesize * 1.1:  # the output is checked exactly later
            raise _Stop(_too_large(expected, max_filesize))
        now = time.monotonic()
        if now - last_report >= 0.5 or update["status"] == "finished":
            last_report = now
            conn.send(("progress", (expected, total > 0)))  # exact once the total is known

    container, audio_only = options["container"], options["audio_only"]
    sort = [f"res:{options['max_resolution']}"] if options["max_resolution"] and not audio_only else []
    sort += PREFERRED_CODECS.get(container, [])  # streams the container takes as they are
    ydl_opts: dict[str, Any] = {
        **_base_options(options),
        "paths": {"home": str(workdir), "temp": str(workdir / "tmp")},
        "outtmpl": {"default": "source.%(ext)s"},
        "retries": 2,
        "fragment_retries": 3,
        "skip_unavailable_fragments": False,  # a stream with holes is not a result
        "ffmpeg_location": options["ffmpeg"],
        "progress_hooks": [on_progress],
        "format": "ba/b" if audio_only else "bv*+ba/b",
        "format_sort": sort,
        "merge_output_format": "mkv" if container == "mkv" else "mp4/mkv",
        "writethumbnail": options["thumbnail"],
    }
    with yt_dlp.YoutubeDL(ydl_opts) as ydl:
        info = live_child.extract_waiting(ydl, url, conn, options)
        _single_video(info)
        if live_child.is_live(info):  # recorded as live whether or not live_recording was sent
            if options.get("live_recording") is False:
                raise _Stop(Classified(LIVE_NOT_WANTED))
            return live_child.record_live(ydl, conn, info, workdir, options)
        duration = info.get("duration")
        if options["max_duration"] and duration and duration > options["max_duration"]:
            raise _Stop(_too_long(duration, options["max_duration"]))
        approx = info.get("filesize") or info.get("filesize_approx")
        if max_filesize and approx and approx > max_filesize * 1.1:
            raise _Stop(_too_large(int(approx), max_filesize))
        if approx:  # the reservation can follow the source's size before a byte arrives
            conn.send(("progress", (int(approx), True)))
        language = subtitle_language(info) if options["subtitles"] else None
        if language:  # params are read when the video is processed, so this still applies
            ydl.params.update(writesubtitles=True, subtitleslangs=[language], subtitlesformat="vtt/srt/best")
        info = ydl.process_ie_result(info, download=True)
    files = [d.get("filepath") for d in info.get("requested_downloads") or []]
    existing = [f for f in files if f and os.path.exists(f)]
    if not existing:
        raise _Stop(Classified("The downloader produced no file", retryable=True))
    path = existing[0]
    subtitle = _written((info.get("requested_subtitles") or {}).get(language or "") or {}, workdir)
    thumbnails = [_written(t, workdir) for t in info.get("thumbnails") or []]
    return {
        "path": path,
        "downloaded_bytes": sum(sizes.values()) or os.path.getsize(path),
        "info": {k: info.get(k) for k in _INFO_FIELDS},
        "subtitle": subtitle,
        "subtitle_language": language if subtitle else None,
        "thumbnail": next((t for t in reversed(thumbnails) if t), None),
    }


def subtitle_language(info: dict[str, Any]) -> str | None:
    """One language of the source's own subtitles (never machine-made ones): English if there
    is one, else the first the source lists."""
    languages = [lang for lang in info.get("subtitles") or {} if lang != "live_chat"]
    english = [lang for lang in languages if lang == "en" or lang.startswith("en-")]
    chosen = (english or languages or [None])[0]
    return str(chosen) if chosen else None


def _written(entry: dict[str, Any], workdir: Path) -> str | None:
    """Where a side file ended up: ``filepath`` names it in the temporary folder, from which
    yt-dlp moves it to the work directory after the download."""
    if not entry.get("filepath"):
        return None
    path = Path(entry["filepath"])
    return next((str(p) for p in (path, workdir / path.name) if p.exists()), None)


METADATA_FIELDS = (
    "title",
    "duration",
    "width",
    "height",
    "extractor",
    "uploader",
    "thumbnail",
    "description",
    "view_count",
    "like_count",
    "upload_date",
    "filesize_approx",
)


def metadata_main(conn: Connection, url: str, options: dict[str, Any]) -> None:
    """Child-process entry for POST /metadata: extraction only, nothing is downloaded."""
    _run_child(conn, options, lambda: _metadata(url, options))


def _metadata(url: str, options: dict[str, Any]) -> dict[str, Any]:
    with yt_dlp.YoutubeDL(_base_options(options)) as ydl:
        info = ydl.extract_info(url, download=False)
        _single_video(info)
        found = {name: info.get(name) for name in METADATA_FIELDS}
        found["filesize_approx"] = found["filesize_approx"] or info.get("filesize")
        if info.get("direct") and info.get("url"):
            # A plain media file: only the file itself tells its length, frame and size.
            fetch = remote_probe.yt_dlp_fetch(ydl, info["url"], info.get("http_headers"))
            measured = remote_probe.probe_remote(fetch)
            found.update({name: value for name, value in measured.items() if found.get(name) is None})
    return found


def entries_main(conn: Connection, url: str, options: dict[str, Any]) -> None:
    """Child-process entry for a feed or playlist: its entries' URLs and titles, flat (each
    entry is read when its own job runs)."""
    _run_child(conn, options, lambda: _entries(url, options))


def _entries(url: str, options: dict[str, Any]) -> dict[str, Any]:
    flat = {**_base_options(options), "noplaylist": False, "extract_flat": "in_playlist"}
    flat["playlistend"] = options["limit"] + 1  # one more than allowed: enough to refuse
    with yt_dlp.YoutubeDL(flat) as ydl:
        info = ydl.extract_info(url, download=False)
        if info.get("_type", "video") == "video":
            return {"title": info.get("title"), "entries": None}
        entries = []
        for entry in info.get("entries") or []:
            link = entry and (entry.get("webpage_url") or entry.get("url"))
            if link:  # feeds smuggle the episode's guid into its URL: not part of the address
                size = entry.get("filesize") or entry.get("filesize_approx")
                entries.append({"url": yt_dlp.utils.unsmuggle_url(link)[0], "title": entry.get("title"),
                                "size": int(size) if size else None})  # fmt: skip
        if len(entries) > options["limit"]:
            raise _Stop(
                Classified(
                    f"This playlist has more than {options['limit']} entries, the most one batch may hold"
                )
            )
        if info.get("extractor_key") == "Generic" and any(e["size"] is None for e in entries):
            lengths = enclosure_lengths(ydl, url)  # a podcast feed: its enclosures' lengths
            for entry in entries:
                entry["size"] = entry["size"] or lengths.get(entry["url"])
    return {"title": info.get("title"), "entries": entries}
