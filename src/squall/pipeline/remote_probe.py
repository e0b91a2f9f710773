"""Measure a remote media file without downloading it (POST /metadata of a direct link).

PyAV reads the file through a file object whose bytes come from HTTP Range requests made
with the downloader's own opener, inside the downloader child: every connection, redirects
included, goes through the child's connect-time guard. PyAV is never given the URL, since its
own network code would resolve names where the guard cannot see. Reads are bounded: at most
``MAX_BYTES`` in ``BLOCK``-sized requests (a file whose index sits at its end, like an MP4
written without faststart, costs a few blocks, not the file)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BLOCK = 256 * 1024
MAX_BYTES = 8 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


@dataclass(frozen=True)
class Chunk:
    data: bytes
    start: int  # where ``data`` begins in the file (0 when the server ignored the Range)
    size: int | None  # the whole file's, when the answer told it


Fetch = Callable[[int, int], Chunk]  # (first byte, last byte) -> what the server sent


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``fetch``, caching what it fetched by block. Past
    ``max_bytes`` fetched, or where the server cannot serve a range, reads fail (OSError)."""

    def __init__(self, fetch: Fetch, *, max_bytes: int = MAX_BYTES, block: int = BLOCK) -> None:
        super().__init__()
        self._fetch, self._max_bytes, self._block = fetch, max_bytes, block
        self._blocks: dict[int, bytes] = {}
        self._fetched = 0
        self._ranges_work = True
        self._size: int | None = None  # as the first answer told it
        self.position = 0
        first = self._load(0)
        self.size = self._size
        if self.size is None and len(first) < block:  # the whole file came at once
            self.size = len(first)

    def _load(self, index: int) -> bytes:
        if index in self._blocks:
            return self._blocks[index]
        if not self._ranges_work or self._fetched >= self._max_bytes:
            raise OSError("not read: beyond what a probe may fetch")
        start = index * self._block
        chunk = self._fetch(start, start + self._block - 1)
        self._fetched += len(chunk.data)
        if index == 0:
            self._size = chunk.size
        if chunk.start != start:  # the Range was ignored: only the start of the file is known
            self._ranges_work = False
            if chunk.start != 0:
                raise OSError("the server answered another range than the one asked for")
            for i in range(0, len(chunk.data), self._block):
                self._blocks.setdefault(i // self._block, chunk.data[i : i + self._block])
            return self._blocks.get(index, b"")
        self._blocks[index] = chunk.data
        return chunk.data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            if self.size is None:
                raise OSError("the file's size is not known")
            offset += self.size
        elif whence == io.SEEK_CUR:
            offset += self.position
        self.position = max(0, offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.size is not None and self.position >= self.size:
            return 0
        index, skip = divmod(self.position, self._block)
        data = self._load(index)[skip : skip + len(view)]
        view[: len(data)] = data
        self.position += len(data)
        return len(data)


def yt_dlp_fetch(ydl: Any, url: str, headers: dict[str, str] | None) -> Fetch:
    """A ``Fetch`` through ``ydl``'s opener (its proxy setting, its redirects, this process's
    guarded name resolution)."""
    from yt_dlp.networking import Request

    def fetch(first: int, last: int) -> Chunk:
        request = Request(url, headers={**(headers or {}), "Range": f"bytes={first}-{last}"})
        with ydl.urlopen(request) as response:
            data = response.read(last - first + 1)
            found = _CONTENT_RANGE.match(response.headers.get("Content-Range") or "")
            if response.status == 206 and found:
                total = found.group(3)
                return Chunk(data, int(found.group(1)), int(total) if total.isdigit() else None)
            length = response.headers.get("Content-Length")
            return Chunk(data, 0, int(length) if length and length.isdigit() else None)

    return fetch


def probe_remote(fetch: Fetch, *, max_bytes: int = MAX_BYTES, block: int = BLOCK) -> dict[str, Any]:
    """``duration``, ``width``, ``height`` and ``filesize_approx`` of the file ``fetch``
    reads, as far as they can be learnt within the budget; what cannot be is left out."""
    import av

    from squall.pipeline.probe import measure

    try:
        source = RangeFile(fetch, max_bytes=max_bytes, block=block)
    except Exception:  # the source refused or failed: nothing learnt
        return {}
    found: dict[str, Any] = {"filesize_approx": source.size} if source.size else {}
    try:
        with av.open(source, mode="r") as container:
            info = measure(container)
    except Exception:  # not media, beyond the budget, or the source failed midway (PyAV
        return found  # passes on whatever the reads raised)
    measured = {"duration": info.duration_seconds, "width": info.width, "height": info.height}
    return {**found, **{name: value for name, value in measured.items() if value is not None}}
