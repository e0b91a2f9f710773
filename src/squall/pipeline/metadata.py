"""POST /metadata: what yt-dlp knows about a URL, without downloading it. Extraction runs in
a downloader child (its own process group, the connect-time SSRF guard) like a job does."""

from __future__ import annotations

from typing import Any

from squall.errors import BadRequest, SquallError
from squall.pipeline.download import downloader_context, kill_group
from squall.pipeline.failures import Classified
from squall.pipeline.urlguard import UrlPolicy


class MetadataTimeout(SquallError):
    status_code = 504


def fetch_metadata(url: str, *, policy: UrlPolicy, socket_timeout: float, timeout: float) -> dict[str, Any]:
    from squall.pipeline import ytdlp_child

    ctx = downloader_context()
    receiver, sender = ctx.Pipe(duplex=False)
    options = {"url_policy": policy, "socket_timeout": socket_timeout}
    process = ctx.Process(target=ytdlp_child.metadata_main, args=(sender, url, options))
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise MetadataTimeout(f"Metadata extraction took longer than {timeout:g} seconds")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise BadRequest("Metadata extraction stopped unexpectedly") from None
        if kind == "failed":
            raise BadRequest(Classified(**payload).message)
        return dict(payload)
    finally:
        kill_group(process)
        process.join(timeout=5)
        receiver.close()
