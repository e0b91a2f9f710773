"""The in-process copy of an MP3 into an MP3 makes what FFmpeg's command makes, and leaves every
other job to FFmpeg. Real files, real FFmpeg to compare with."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from squall.pipeline.binaries import ffmpeg_path
from squall.pipeline.probe import probe
from squall.pipeline.process import build_command
from squall.pipeline.remux import copies_in_process, remux
from squall.pipeline.spec import JobSpec
from squall.settings import Settings
from squall.worker import Worker
from tests.support.helpers import drain
from tests.support.server import MediaServer

MP3 = JobSpec(job_id="job", url="http://example.com/episode.mp3", container="mp3")


class Events:
    def cancelled(self) -> bool:
        return False


@pytest.fixture
def tagged_mp3(media_dir: Path, tmp_path: Path) -> Path:
    """An MP3 with tags and a cover picture (a video stream FFmpeg's command drops)."""
    target = tmp_path / "tagged.mp3"
    command = [ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", "-i", str(media_dir / "tone.mp3")]
    command += ["-f", "lavfi", "-i", "color=red:s=64x64:d=1", "-map", "0:a", "-map", "1:v", "-frames:v", "1"]
    command += ["-c:a", "copy", "-c:v", "mjpeg", "-disposition:v", "attached_pic"]
    subprocess.run(
        [*command, "-metadata", "title=Episode 1", "-metadata", "artist=Someone", str(target)], check=True
    )
    return target


def contents(path: Path) -> tuple[str, float | None, dict[str, str], list[str]]:
    """The audio packets' bytes (hashed), the duration, the tags and the streams. Not the file's
    size: the "encoder" tag names the muxing library's version, which differs between the
    FFmpeg binary and PyAV's libraries (the bundled FFmpeg's is a byte shorter)."""
    audio = hashlib.sha256()
    with av.open(str(path)) as container:
        tags = {k: v for k, v in container.metadata.items() if k != "encoder"}
        streams = [stream.type for stream in container.streams]
        for packet in container.demux(container.streams.audio[0]):
            audio.update(bytes(packet))
    return audio.hexdigest(), probe(path).duration_seconds, tags, streams


def test_the_copy_in_process_is_what_ffmpeg_makes(tagged_mp3: Path, tmp_path: Path) -> None:
    media = probe(tagged_mp3)
    assert media.video_codec == "mjpeg" and copies_in_process(MP3, media)
    by_ffmpeg, in_process = tmp_path / "ffmpeg.mp3", tmp_path / "in-process.mp3"
    subprocess.run(build_command(tagged_mp3, by_ffmpeg, MP3, media), check=True)
    assert remux(tagged_mp3, in_process, MP3, media, Events())
    made = contents(in_process)
    assert made == contents(by_ffmpeg)
    assert made[2] == {"title": "Episode 1", "artist": "Someone"} and made[3] == ["audio"]


@pytest.mark.parametrize(
    "change",
    [
        {"clip_start": 1.0},
        {"clip_end": 2.0},
        {"max_output_seconds": 1},
        {"audio_codec": "mp3"},  # asked to encode
        {"container": "m4a"},
    ],
)
def test_anything_but_a_plain_copy_is_left_to_ffmpeg(
    media_dir: Path, tmp_path: Path, change: dict[str, object]
) -> None:
    spec = replace(MP3, **change)  # type: ignore[arg-type]
    target = tmp_path / f"output.{spec.container}"
    assert not copies_in_process(spec, probe(media_dir / "tone.mp3"))
    assert not remux(media_dir / "tone.mp3", target, spec, probe(media_dir / "tone.mp3"), Events())
    assert not target.exists()


def test_a_copy_that_fails_is_left_to_ffmpeg(media_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "output.mp3"
    assert not remux(media_dir / "tone.mp3", target, MP3, probe(media_dir / "tone.mp3"), Events())


def test_an_mp3_job_completes_with_the_source_audio(
    client: TestClient, api_key: str, worker: Worker, media: MediaServer, settings: Settings, media_dir: Path
) -> None:
    body = {"url": media.url("media/tone.mp3"), "format": "mp3"}
    response = client.post("/jobs", headers={"x-api-key": api_key}, json=body)
    assert response.status_code == 200, response.text
    drain(worker)
    job = client.get(f"/jobs/{response.json()['job_id']}", headers={"x-api-key": api_key}).json()
    assert job["status"] == "Completed", job
    stored = settings.storage_dir / job["s3_key"]
    assert job["s3_key"].endswith(".mp3") and job["file_size"] == stored.stat().st_size
    assert abs((probe(stored).duration_seconds or 0) - 3.0) < 0.1 and probe(stored).audio_codec == "mp3"
