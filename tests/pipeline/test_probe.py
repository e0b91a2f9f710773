"""``probe`` trusts the header of an MP4 or Matroska file and reads the packets of anything
else: either way it must say what a full FFmpeg probe says."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from squall.errors import JobFailure
from squall.pipeline import probe as probing
from squall.pipeline.binaries import ffmpeg_path

LIBRARY_FILES = ["tiny.mp4", "portrait.mp4", "silent.mp4", "index-at-end.mp4", "tone.mp3", "vorbis.webm"]
SOURCES = ["-f", "lavfi", "-i", "testsrc=size=320x180:duration=2", "-f", "lavfi", "-i", "sine=duration=2"]
AV = ["-c:v", "libx264", "-c:a", "aac", "-shortest"]
# name -> FFmpeg output options: containers the library lacks, and an MP4 whose header holds no samples
MADE = {
    "h264.mkv": AV,
    "h264.ts": AV,
    "h264.flv": AV,
    "fragmented.mp4": [*AV, "-movflags", "frag_keyframe+empty_moov"],
    "audio.m4a": ["-vn", "-c:a", "aac"],
    "transport-stream.mp4": [*AV, "-f", "mpegts"],  # misnamed
}
HEADER_TRUSTED = {"tiny.mp4", "portrait.mp4", "silent.mp4", "index-at-end.mp4", "vorbis.webm", "h264.mkv",
                  "fragmented.mp4", "audio.m4a"}  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    for name, options in MADE.items():
        command = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", *SOURCES, *options]
        subprocess.run([*command, str(folder / name)], check=True)
    return folder


def full_probe(path: Path) -> probing.MediaInfo:
    with av.open(str(path)) as container:
        return probing.measure(container)


def counting_opens(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    opened: list[dict[str, Any]] = []
    real_open = av.open

    def open_and_count(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", open_and_count)  # the module probing uses
    return opened


@pytest.mark.parametrize("name", LIBRARY_FILES + list(MADE))
def test_probe_says_what_a_full_probe_says(
    name: str, media_dir: Path, made: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = media_dir / name if name in LIBRARY_FILES else made / name
    expected = full_probe(path)
    opened = counting_opens(monkeypatch)

    assert probing.probe(path) == expected
    assert expected.duration_seconds and (expected.audio_codec or expected.video_codec)
    if name in HEADER_TRUSTED:  # read once, its header only
        assert opened == [{"container_options": probing.HEADER_ONLY}]
    else:  # probed in full; first opened for its header only when its name said MP4
        assert opened[-1] == {}
        assert len(opened) == (2 if name.endswith(".mp4") else 1)


def test_an_mp4_header_is_enough_for_a_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the few kilobytes a header takes, so a full probe would read packets for it."""
    path = tmp_path / "noisy.mp4"
    noisy = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=2", "-vf", "noise=alls=30:allf=t"]
    command = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", *noisy, "-c:v", "libx264"]
    subprocess.run(
        [*command, "-preset", "ultrafast", "-crf", "10", "-movflags", "+faststart", str(path)], check=True
    )
    assert path.stat().st_size > 5 * 1024 * 1024  # FFmpeg's default probe size
    expected = full_probe(path)
    opened = counting_opens(monkeypatch)

    assert probing.probe(path) == expected
    assert opened == [{"container_options": probing.HEADER_ONLY}]


def test_a_header_without_a_duration_is_probed_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matroska written to a pipe (as a live recording is) cannot go back to note its length."""
    path = tmp_path / "streamed.mkv"
    command = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", *SOURCES, *AV]
    with path.open("wb") as out:
        subprocess.run([*command, "-f", "matroska", "pipe:1"], stdout=out, check=True)
    expected = full_probe(path)
    opened = counting_opens(monkeypatch)

    assert probing.probe(path) == expected
    assert expected.video_codec == "h264" and expected.duration_seconds is None
    assert opened == [{"container_options": probing.HEADER_ONLY}, {}]


def test_a_file_that_is_not_media_is_skipped(media_dir: Path) -> None:
    with pytest.raises(JobFailure) as failed:
        probing.probe(media_dir / "page.html")
    assert failed.value.outcome == "Skipped"
