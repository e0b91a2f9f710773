"""Imported once by the downloader forkserver, so every forked child starts warm.

yt-dlp finds the extractor for a URL by trying ~1,900 URL patterns, compiled on first use
(about a second). Compiling them here, before any fork, makes each job's child skip that."""

from __future__ import annotations

from yt_dlp.extractor import gen_extractor_classes

from squall.pipeline import ytdlp_child  # noqa: F401  (the code the children run)

for _extractor in gen_extractor_classes():
    _extractor.suitable("http://127.0.0.1/warm-up.mp4")
