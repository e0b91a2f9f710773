"""Responses for objects too large for the delivery cache: a client's ``Range`` goes to the
bucket as a ranged read of just those bytes, and a whole-object GET streams the object in
chunks (memory per request is a chunk, whatever the object's size).

The answers are the ones ``FileResponse`` gives for a cached or local file (the same range
parsing, merging of overlapping ranges, 400 and 416 bodies, ``If-Range``, multipart for
several ranges), so a client cannot tell which path served it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from mimetypes import guess_type

import anyio
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from squall.delivery.metered import content_disposition
from squall.storage.base import ByteStream

MAX_RANGES = 100  # more parts than this: the whole object (as FileResponse does)
ReadRange = Callable[[int, int], ByteStream]  # (start, end) -> bytes start..end-1
Piece = bytes | ByteStream | Callable[[], ByteStream]  # literal, open stream, stream opened when reached


class Malformed(Exception):
    def __init__(self, message: str = "Malformed range header.") -> None:
        self.message = message


class Unsatisfiable(Exception):
    pass


def parse_ranges(header: str, size: int) -> list[tuple[int, int]]:
    """Half-open (start, end) ranges to send, merged; [] means the whole object."""
    units, equals, spec = header.partition("=")
    if not equals:
        raise Malformed()
    if units.strip().lower() != "bytes":
        raise Malformed("Only support bytes range")
    if spec.count(",") + 1 > MAX_RANGES:
        return []
    ranges = []
    for part in spec.split(","):
        first, dash, last = (text.strip() for text in part.strip().partition("-"))
        if not dash:
            continue
        try:  # "a-b", "a-" (to the end) or "-n" (the last n bytes); a part that is not numbers is ignored
            start = int(first) if first else max(size - int(last), 0)
            end = int(last) + 1 if first and last and int(last) < size else size
        except ValueError:
            continue
        ranges.append((start, end))
    if not ranges:
        raise Malformed("Range header: range must be requested")
    if any(not 0 <= start < size for start, _ in ranges):
        raise Unsatisfiable()
    if any(start >= end for start, end in ranges):
        raise Malformed("Range header: start must be less than end")
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def respond(request_headers: Mapping[str, str], size: int, read: ReadRange, *, name: str,
            headers: dict[str, str], head: bool = False) -> Response:  # fmt: skip
    """The answer to a GET of ``size`` bytes read with ``read``. The first ranged read starts
    here, in the caller's thread, so a failing bucket is an error response, not a cut body.
    ``head``: the answer to a HEAD, the GET's status and headers without reading anything."""
    media_type = guess_type(name)[0] or "application/octet-stream"
    headers = {**headers, "accept-ranges": "bytes", "content-disposition": content_disposition(name)}
    header, if_range = request_headers.get("range"), request_headers.get("if-range")
    if if_range is not None and (if_range.startswith("W/") or if_range not in (headers["etag"], headers["last-modified"])):  # fmt: skip
        header = None  # the client's copy is not this one: the whole object
    try:
        ranges = parse_ranges(header, size) if header is not None else []
    except Malformed as exc:
        return PlainTextResponse(exc.message, status_code=400)
    except Unsatisfiable:
        return PlainTextResponse(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if len(ranges) <= 1:
        start, end = ranges[0] if ranges else (0, size)
        partial = {"content-range": f"bytes {start}-{end - 1}/{size}"} if ranges else {}
        status, headers = 206 if ranges else 200, {**headers, **partial, "content-length": str(end - start)}
        if head:
            return Response(status_code=status, headers=headers, media_type=media_type)
        return Relay([read(start, end)], status_code=status, media_type=media_type, headers=headers)
    boundary = secrets.token_hex(13)
    part_type = media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
    pieces: list[Piece] = []
    for start, end in ranges:
        pieces.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                      f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n".encode("latin-1"))  # fmt: skip
        pieces += [lambda start=start, end=end: read(start, end), b"\r\n"]  # type: ignore[misc]
    pieces.append(f"--{boundary}--".encode("latin-1"))
    length = sum(len(p) for p in pieces if isinstance(p, bytes)) + sum(end - start for start, end in ranges)
    headers, media_type = (
        {**headers, "content-length": str(length)},
        f"multipart/byteranges; boundary={boundary}",
    )
    if head:  # the parts' reads are opened only when reached: none was
        return Response(status_code=206, headers=headers, media_type=media_type)
    return Relay(pieces, status_code=206, headers=headers, media_type=media_type)


class Relay(StreamingResponse):
    """Sends literal pieces and ranged reads in order, one chunk at a time (each read in a
    worker thread: the backends' clients block). Every stream it opened is closed when the
    response ends, also when the client went away half-way."""

    def __init__(
        self, pieces: list[Piece], *, status_code: int, headers: Mapping[str, str], media_type: str
    ) -> None:
        self.opened = [piece for piece in pieces if isinstance(piece, ByteStream)]
        super().__init__(self._relay(pieces), status_code=status_code, headers=headers, media_type=media_type)

    async def _relay(self, pieces: list[Piece]) -> AsyncIterator[bytes]:
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            if isinstance(piece, ByteStream):
                stream = piece
            else:
                stream = await anyio.to_thread.run_sync(piece)
                self.opened.append(stream)
            while (chunk := await anyio.to_thread.run_sync(next, stream, None)) is not None:
                yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                for stream in self.opened:
                    await anyio.to_thread.run_sync(stream.close)
