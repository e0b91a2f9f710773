"""Byte units. GB means 1024³ bytes throughout (as in the Tornado API)."""

from __future__ import annotations

KB = 1024
MB = 1024 * KB
GB = 1024 * MB


def human_bytes(size: float) -> str:
    """``59307`` -> ``57.9 KB``: for messages people read."""
    for unit, factor in (("GB", GB), ("MB", MB), ("KB", KB)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{int(size)} bytes"
