"""Find FFmpeg: ``SQUALL_FFMPEG`` if set (a path, or ``bundled``), else a system ``ffmpeg``,
else the binary that ships in the ``imageio-ffmpeg`` wheel, so a fresh machine without
FFmpeg still works."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache


@lru_cache
def ffmpeg_path() -> str:
    chosen = os.environ.get("SQUALL_FFMPEG", "")
    if chosen and chosen != "bundled":
        return chosen
    system = None if chosen == "bundled" else shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
