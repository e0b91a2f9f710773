"""A local HTTP server (port 0) for media, with fault endpoints:

- ``/media/<name>``           the file (Range supported); served as video/mp4 etc.
- ``/slow/<name>?kbps=N``     the file, sent slowly (for kill-mid-job tests)
- ``/status/<code>``          an empty answer with that status (404, 403, 410, 429, 500…)
- ``/octet/<name>``           the file as application/octet-stream
- ``/stall/<name>``           headers, a few bytes, then nothing (a stalled source)
- ``/redirect?to=<url>``      a 302 to that URL
- ``/feed/<title>?episodes=a.mp4,b.mp4[&base=<url>]``  a podcast RSS feed of those media
  files (on this server, or under ``base``)
- ``/pointing/<m3u8>?to=<base>``  an HLS playlist whose segments are ``<base><segment>``
  (absolute URLs, possibly on another host)

Every request path is recorded in ``MediaServer.requests``.
"""

from __future__ import annotations

import mimetypes
import threading
import time
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def podcast_feed(title: str, episode_urls: list[str], lengths: list[int | None] | None = None) -> str:
    """An RSS feed; each enclosure announces its ``length`` in bytes where one is given (feeds
    in the wild also send 0 or nothing)."""
    sizes = lengths or [None] * len(episode_urls)
    items = "".join(
        f"<item><title>Episode {n}</title><guid>ep-{n}</guid>"
        f'<enclosure url="{escape(url)}" type="video/mp4"{_length(size)}/></item>'
        for n, (url, size) in enumerate(zip(episode_urls, sizes, strict=True), start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://example.com/</link><description>A show</description>"
        f"{items}</channel></rss>"
    )


def _length(size: int | None) -> str:
    return "" if size is None else f' length="{size}"'


def make_handler(root: Path, requests: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def answer(self, status: int, body: bytes = b"", ctype: str = "text/plain", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self, head: bool = False) -> None:
            requests.append(self.path)
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            kind, _, name = parts.path.lstrip("/").partition("/")  # name may hold sub-folders
            if kind == "redirect":
                self.answer(302, Location=query["to"][0])
                return
            if kind == "pointing":
                lines = (root / name).read_text().splitlines()
                base = query["to"][0]
                body = "\n".join(line if line.startswith("#") else base + line for line in lines)
                self.answer(200, body.encode(), "application/vnd.apple.mpegurl")
                return
            if kind == "feed":  # a podcast feed whose episodes are this server's media files
                episodes = query.get("episodes", ["tiny.mp4"])[0].split(",")
                base = query.get("base", [f"http://{self.headers['Host']}/media/"])[0]
                # Enclosure lengths: ?lengths=1000,2000 as given, "none" for none, else the files' sizes.
                given = query.get("lengths", [""])[0]
                lengths: list[int | None] = (
                    [None] * len(episodes) if given == "none"
                    else [int(n) for n in given.split(",")] if given
                    else [(root / e).stat().st_size if (root / e).is_file() else None for e in episodes]
                )  # fmt: skip
                feed = podcast_feed(name, [base + e for e in episodes], lengths)
                self.answer(200, feed.encode(), "application/rss+xml")
                return
            if kind == "stall":
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str((root / name).stat().st_size))
                self.end_headers()
                self.wfile.write((root / name).read_bytes()[:1024])
                self.wfile.flush()
                time.sleep(30)  # longer than any test's socket timeout
                return
            if kind == "status":
                self.send_response(int(name))
                self.send_header("Content-Length", "0")
                if name == "429":
                    self.send_header("Retry-After", "1")
                self.end_headers()
                return
            path = root / name
            if kind not in ("media", "slow", "octet") or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            ctype = (
                "application/octet-stream"
                if kind == "octet"
                else (mimetypes.guess_type(name)[0] or "application/octet-stream")
            )
            start, end = 0, len(data) - 1
            status = 200
            header = self.headers.get("Range")
            if header and header.startswith("bytes=") and kind != "slow":
                first, _, last = header[6:].partition("-")
                start = int(first or 0)
                end = min(int(last), end) if last else end
                status = 206
            body = data[start : end + 1]
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if head:
                return
            if kind == "slow":
                kbps = float(query.get("kbps", ["20"])[0])
                chunk = 2048
                for offset in range(0, len(body), chunk):
                    try:
                        self.wfile.write(body[offset : offset + chunk])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    time.sleep(chunk / 1024 / kbps)
            else:
                self.wfile.write(body)

    return Handler


class MediaServer:
    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        self.httpd = ThreadingHTTPServer((host, 0), make_handler(root, self.requests))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> MediaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
