"""Find FFmpeg: a system ``ffmpeg`` when there is one, else the binary that ships in the
``imageio-ffmpeg`` wheel, so a fresh machine without FFmpeg still works."""

from __future__ import annotations

import shutil
from functools import lru_cache


@lru_cache
def ffmpeg_path() -> str:
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
