"""Responses that report what they sent: the body bytes that reached the connection, also
when the client goes away half-way (the transfer is then cancelled, and what was written
until then is what counts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


class Metered(Response):
    """Wraps a response; ``on_done(bytes_sent)`` runs once it has ended, however it ended,
    in a worker thread (it writes to the database). ``cleanup`` is deleted afterwards."""

    def __init__(self, inner: Response, on_done: Callable[[int], None], cleanup: Path | None = None) -> None:
        self.inner = inner
        self.on_done = on_done
        self.cleanup = cleanup
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))

        # Without "pathsend" the server cannot send the file behind our back: every byte
        # passes through ``counting``.
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:
            await self.inner({**scope, "extensions": extensions}, receive, counting)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.on_done, sent)
                if self.cleanup is not None:
                    self.cleanup.unlink(missing_ok=True)


def content_disposition(filename: str) -> str:
    """As Starlette's FileResponse writes it (so HEAD and GET agree)."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'
