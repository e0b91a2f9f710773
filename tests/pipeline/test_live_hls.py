"""The live HLS recorder's logic on playlists written by the test: where it starts, what ends
it, and that it asks for room before it writes. The network side is a dict of documents
(``fake_fetch``); the real stream is in test_live.py."""

from __future__ import annotations

from pathlib import Path

from squall.pipeline import live_hls
from squall.pipeline.live_hls import Control, parse_media_playlist, record

BASE = "http://example.test/live/"


def playlist(first: int, count: int, *, ended: bool = False, target: int = 1) -> str:
    lines = ["#EXTM3U", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for n in range(first, first + count):
        lines += ["#EXTINF:1.000,", f"seg_{n:03d}.ts"]
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if ended else [])) + "\n"


class FakeStream:
    """A playlist that moves one segment on at each refresh (``docs`` in order)."""

    def __init__(self, docs: list[str]) -> None:
        self.docs, self.fetched = docs, list[str]()

    def fetch(self, url: str) -> tuple[bytes, str]:
        self.fetched.append(url.removeprefix(BASE))
        if url.endswith(".m3u8"):
            return (self.docs.pop(0) if len(self.docs) > 1 else self.docs[0]).encode(), url
        return b"x" * 100, url


def control(room: int = 10**9, stop_after: int | None = None) -> tuple[Control, list[int]]:
    asked: list[int] = []

    def ask(total: int) -> bool:
        asked.append(total)
        return total <= room

    def stopped() -> bool:
        return stop_after is not None and len(asked) >= stop_after

    return Control(ask, stopped, lambda seconds, size: None), asked


def test_a_playlist_is_parsed_with_absolute_segment_urls() -> None:
    parsed = parse_media_playlist(playlist(7, 2, ended=True, target=2), BASE + "index.m3u8")
    assert parsed.ended and parsed.target_duration == 2
    assert [(s.sequence, s.url) for s in parsed.segments] == [
        (7, BASE + "seg_007.ts"),
        (8, BASE + "seg_008.ts"),
    ]


def test_the_live_point_is_the_newest_segment_and_the_end_list_ends_it(tmp_path: Path) -> None:
    stream = FakeStream([playlist(0, 3), playlist(1, 3), playlist(2, 3, ended=True)])
    ctl, _ = control()
    done = record(stream.fetch, BASE + "index.m3u8", tmp_path / "out.ts", limit_seconds=60, from_start=False,
                  control=ctl, sleep=lambda s: None)  # fmt: skip
    assert done.stopped_by == live_hls.STREAM_ENDED
    assert [f for f in stream.fetched if f.endswith(".ts")] == ["seg_002.ts", "seg_003.ts", "seg_004.ts"]
    assert (tmp_path / "out.ts").stat().st_size == done.size == 300


def test_from_start_takes_the_first_listed_segment_and_stops_at_the_limit(tmp_path: Path) -> None:
    stream = FakeStream([playlist(5, 6)])
    ctl, _ = control()
    done = record(stream.fetch, BASE + "index.m3u8", tmp_path / "out.ts", limit_seconds=3, from_start=True,
                  control=ctl, sleep=lambda s: None)  # fmt: skip
    assert done.stopped_by == live_hls.MAX_DURATION and done.seconds == 3
    assert [f for f in stream.fetched if f.endswith(".ts")] == ["seg_005.ts", "seg_006.ts", "seg_007.ts"]


def test_room_is_asked_before_each_write_and_a_refusal_keeps_what_fit(tmp_path: Path) -> None:
    stream = FakeStream([playlist(0, 10)])
    ctl, asked = control(room=250)
    done = record(stream.fetch, BASE + "index.m3u8", tmp_path / "out.ts", limit_seconds=60, from_start=True,
                  control=ctl, sleep=lambda s: None)  # fmt: skip
    assert done.stopped_by == live_hls.QUOTA
    assert asked == [100, 200, 300]  # the file's size after each write, asked before it
    assert (tmp_path / "out.ts").stat().st_size == 200


def test_a_stop_keeps_the_segments_recorded_so_far(tmp_path: Path) -> None:
    stream = FakeStream([playlist(0, 10)])
    ctl, _ = control(stop_after=2)
    done = record(stream.fetch, BASE + "index.m3u8", tmp_path / "out.ts", limit_seconds=60, from_start=True,
                  control=ctl, sleep=lambda s: None)  # fmt: skip
    assert done.stopped_by == live_hls.STOPPED_BY_USER and done.segments == 2


def test_a_playlist_that_stops_growing_ends_the_recording(tmp_path: Path) -> None:
    """No end list, no new segment: after 3 target durations (at least 8 s) the stream is over."""
    stream = FakeStream([playlist(0, 2)])
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    ctl, _ = control()
    done = record(stream.fetch, BASE + "index.m3u8", tmp_path / "out.ts", limit_seconds=60, from_start=True,
                  control=ctl, sleep=sleep, clock=lambda: now[0])  # fmt: skip
    assert done.stopped_by == live_hls.STREAM_ENDED and done.segments == 2
    assert live_hls.STALL_MIN_SECONDS < now[0] < live_hls.STALL_MIN_SECONDS + 1
