"""Files stored next to the media when asked for: one subtitle track and a thumbnail.

They share the media's final name, so ``videos/talk.mp4`` gets ``videos/talk.en.vtt`` and
``videos/talk.jpg``. A source without a thumbnail gets a frame FFmpeg takes from the video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from squall.errors import JobFailure
from squall.pipeline.probe import MediaInfo
from squall.pipeline.process import ffmpeg_base, run_ffmpeg
from squall.pipeline.spec import DownloadResult, JobSpec, PipelineEvents
from squall.storage.naming import sanitize_filename

THUMBNAIL_AT_SECONDS = 1.0


@dataclass(frozen=True)
class Sidecar:
    path: Path
    suffix: str  # what follows the media's stem in the object key: ".en.vtt", ".jpg"

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def subtitle_sidecar(fetched: DownloadResult) -> Sidecar | None:
    if not fetched.subtitle:
        return None
    path = Path(fetched.subtitle)
    language = sanitize_filename(fetched.subtitle_language or "", fallback="und").replace(" ", "-")
    return Sidecar(path, f".{language}{path.suffix.lower()}")


def thumbnail_sidecar(
    spec: JobSpec,
    fetched: DownloadResult,
    candidates: list[tuple[Path, MediaInfo]],
    workdir: Path,
    events: PipelineEvents,
) -> Sidecar | None:
    """The source's thumbnail, else a frame of the first candidate file that has video."""
    if not spec.thumbnail:
        return None
    if fetched.thumbnail:
        path = Path(fetched.thumbnail)
        return Sidecar(path, path.suffix.lower() or ".jpg")
    for path, media in candidates:
        if media.video_codec is None:
            continue
        target = workdir / "thumbnail.jpg"
        at = min(THUMBNAIL_AT_SECONDS, (media.duration_seconds or 0) / 2)
        cmd = [
            *ffmpeg_base(),
            "-ss",
            f"{at:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-q:v",
            "3",
            str(target),
        ]
        try:
            run_ffmpeg(cmd, events, spec.timeout_seconds)
        except JobFailure:  # a missing thumbnail is not worth failing the job over
            return None
        return Sidecar(target, ".jpg") if target.exists() and target.stat().st_size else None
    return None  # audio without artwork: nothing to show
