"""The answers for objects beyond the delivery cache (ranged reads of the backend) are the
ones Starlette's FileResponse gives for a cached or local file: the same request headers
are sent to both, and status, headers and body must agree."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.testclient import TestClient

from squall.delivery import ranged
from squall.delivery.cache import KNOWN_SIZES, DeliveryCache
from squall.storage.local import LocalStorage

# No database takes part: running them again on PostgreSQL would test nothing new (CI budget).
pytestmark = pytest.mark.skipif(
    os.environ.get("SQUALL_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="no database in these tests: they run in the SQLite pass only (CI budget)",
)

SIZE = 600 * 1024 + 7  # a few of the backends' 256 KB chunks, and not a multiple of them
HEADERS = {"etag": '"abc"', "last-modified": "Sun, 06 Dec 2026 10:00:00 GMT", "cache-control": "private"}
CASES = [
    {},
    {"range": "bytes=0-99"},
    {"range": "bytes=100-300000"},  # across a chunk boundary
    {"range": "bytes=-1000"},  # suffix: the last 1,000 bytes
    {"range": f"bytes=-{SIZE + 5}"},  # a suffix longer than the object: all of it
    {"range": "bytes=500000-"},  # open: to the end
    {"range": f"bytes=10-{SIZE + 100}"},  # an end past the object: to the end
    {"range": "bytes=0-9,20-29,25-40"},  # several ranges, overlapping ones merged: multipart
    {"range": "bytes=500000-500010, 0-0"},  # out of order
    {"range": f"bytes={SIZE}-"},  # starts at the end: 416
    {"range": f"bytes={SIZE + 10}-{SIZE + 20}"},  # 416
    {"range": "bytes=-0"},  # 416
    {"range": "bytes=9-5"},  # 400
    {"range": "items=0-5"},  # 400: only bytes
    {"range": "bytes=abc"},  # 400: no range in it
    {"range": "0-5"},  # 400
    {"range": "bytes=" + ",".join(f"{i * 9000}-{i * 9000 + 9}" for i in range(60))},  # 60 parts
    {"range": "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(101))},  # too many: all of it
    {"range": "bytes=0-9", "if-range": '"abc"'},  # the same copy: the range
    {"range": "bytes=0-9", "if-range": HEADERS["last-modified"]},
    {"range": "bytes=0-9", "if-range": '"other"'},  # another copy: all of it
    {"range": "bytes=0-9", "if-range": 'W/"abc"'},
]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    root = tmp_path_factory.mktemp("ranged")
    storage = LocalStorage(root)
    (root / "clip.mp4").write_bytes(os.urandom(SIZE))
    app = FastAPI()

    @app.api_route("/file", methods=["GET", "HEAD"])
    def file() -> Response:
        return FileResponse(root / "clip.mp4", filename="clip.mp4", headers=HEADERS)

    @app.api_route("/ranged", methods=["GET", "HEAD"])
    def streamed(request: Request) -> Response:
        read = partial(storage.read_range, "clip.mp4")
        head = request.method == "HEAD"
        return ranged.respond(request.headers, SIZE, read, name="clip.mp4", headers=HEADERS, head=head)

    return TestClient(app)


def normalized(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body, with a multipart answer's random boundary named BOUNDARY."""
    body, headers = response.content, dict(response.headers)
    boundary = headers.get("content-type", "").partition("boundary=")[2]
    if boundary:
        body = body.replace(boundary.encode(), b"BOUNDARY")
        headers["content-type"] = headers["content-type"].replace(boundary, "BOUNDARY")
    return response.status_code, headers, body


each_case = pytest.mark.parametrize(
    "request_headers", CASES, ids=lambda h: " ".join(h.values())[:40] or "whole"
)


@each_case
def test_ranged_reads_answer_as_the_file_response_does(
    both: TestClient, request_headers: dict[str, str]
) -> None:
    expected = both.get("/file", headers=request_headers)
    streamed = both.get("/ranged", headers=request_headers)
    assert normalized(streamed) == normalized(expected)
    assert int(streamed.headers.get("content-length", len(streamed.content))) == len(streamed.content)


@each_case
def test_a_head_answers_as_the_file_response_and_the_get_do(
    both: TestClient, request_headers: dict[str, str]
) -> None:
    """A HEAD reads nothing, yet has the GET's status, Content-Range and Content-Length."""
    expected = both.head("/file", headers=request_headers)
    head = both.head("/ranged", headers=request_headers)
    assert normalized(head) == normalized(expected)
    get = both.get("/ranged", headers=request_headers)
    if get.status_code in (200, 206):  # a 400's or 416's short text body is the same either way
        assert head.content == b""
        get_status, get_headers, _ = normalized(get)
        assert normalized(head)[:2] == (get_status, get_headers)


def test_the_cases_cover_every_kind_of_answer(both: TestClient) -> None:
    statuses = {both.get("/ranged", headers=h).status_code for h in CASES}
    assert statuses == {200, 206, 400, 416}
    multipart = both.get("/ranged", headers={"range": "bytes=0-9,20-29"})
    assert multipart.headers["content-type"].startswith("multipart/byteranges; boundary=")


def test_a_ranged_read_of_a_local_file_is_chunked(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = os.urandom(SIZE)
    (tmp_path / "x.bin").write_bytes(data)
    chunks = list(storage.read_range("x.bin", 5, SIZE - 3))
    assert b"".join(chunks) == data[5 : SIZE - 3]
    assert len(chunks) == 3 and max(map(len, chunks)) == 256 * 1024


def test_the_sizes_of_uncached_objects_are_remembered_within_a_bound(tmp_path: Path) -> None:
    cache = DeliveryCache(tmp_path / "cache", max_bytes=10)
    for i in range(KNOWN_SIZES + 1):
        cache.remember_size(f"k{i}", 100 + i)
    assert cache.known_size("k0") is None  # the least recently used went first
    assert cache.known_size("k1") == 101 and cache.known_size(f"k{KNOWN_SIZES}") == 100 + KNOWN_SIZES
    assert list(cache.root.iterdir()) == []  # sizes only: nothing on disk
