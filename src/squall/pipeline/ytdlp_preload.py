"""Imported once by the downloader forkserver, so every forked child starts warm.

yt-dlp finds the extractor for a URL by trying ~1,900 URL patterns, compiled on first use
(about a second). Compiling them here, before any fork, makes each job's child skip that.
The generic extractor (every direct file and feed) is imported here too: its module pulls in
yt-dlp's YouTube package, 0.25-0.5 s of imports and regex compiling that each child would
otherwise pay again (measured by ``bench.small_jobs``). So are the regexes of yt-dlp's date
formats."""

from __future__ import annotations

import _strptime  # noqa: F401  (time.strptime's lazy import, used while extracting dates)
import contextlib
import gc
from datetime import datetime

import yt_dlp.extractor.commonprotocols
import yt_dlp.extractor.generic  # noqa: F401  (the real class behind the lazy GenericIE)
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.utils._utils import date_formats

from squall.pipeline import ytdlp_child  # noqa: F401  (the code the children run)

for _extractor in gen_extractor_classes():
    _extractor.suitable("http://127.0.0.1/warm-up.mp4")

# yt-dlp reads dates (a file's Last-Modified, say) by trying its ~55 formats in turn; each try
# compiles a regex, ~18 ms of CPU per child when done there (bench.small_jobs under py-spy).
for _format in {*date_formats(True), *date_formats(False)}:
    with contextlib.suppress(ValueError):
        datetime.strptime("", _format)

# What was imported stays shared with the children: their collector does not walk (and so
# copy) it.
gc.freeze()
