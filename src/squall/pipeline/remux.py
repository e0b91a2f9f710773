"""The stream copy FFmpeg would make, made in this process with PyAV when it is a plain one: an
MP3 source into an MP3 output, nothing cut, nothing re-encoded (a podcast episode, typically).

Starting FFmpeg costs ~70 ms of CPU on the benchmark machine (it loads ~200 shared libraries)
for a job whose copy takes ~1.5 ms in process (``docs/BENCHMARKS.md``, "Small jobs: a lighter
remux"). Like FFmpeg's command (``process.build_command``) it keeps the first audio stream and
the source's tags, drops pictures and data, and reads only the local file. Anything else, or any
error here, goes to FFmpeg as before."""

from __future__ import annotations

import errno
from pathlib import Path

import av

from squall.errors import JobFailure
from squall.pipeline.failures import DISK_FULL
from squall.pipeline.probe import MediaInfo
from squall.pipeline.process import MUXERS, audio_args, video_args
from squall.pipeline.spec import Cancelled, JobSpec, PipelineEvents

# (output container, source audio codec) copied in process.
IN_PROCESS = frozenset({("mp3", "mp3")})
CANCEL_CHECK_EVERY = 2000  # packets (~50 s of MP3)


def copies_in_process(spec: JobSpec, media: MediaInfo) -> bool:
    """The job's processing is a plain copy of one audio stream this module makes."""
    return (
        (spec.container, media.audio_codec) in IN_PROCESS
        and spec.clip_start is None
        and spec.clip_end is None
        and not spec.max_output_seconds
        and video_args(spec, media) == ["-vn"]
        and audio_args(spec, media) == ["-c:a", "copy"]
    )


def remux(source: Path, target: Path, spec: JobSpec, media: MediaInfo, events: PipelineEvents) -> bool:
    """Copy ``source`` into ``target`` if ``copies_in_process``; False: FFmpeg must do it."""
    if not copies_in_process(spec, media):
        return False
    try:
        _copy_audio(source, target, MUXERS[spec.container], events)
    except av.error.FFmpegError as exc:
        target.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise JobFailure(DISK_FULL, retryable=True) from None
        return False  # FFmpeg's own run says what is wrong, in its words
    return True


def _copy_audio(source: Path, target: Path, muxer: str, events: PipelineEvents) -> None:
    with av.open(str(source)) as given, av.open(str(target), "w", format=muxer) as output:
        audio = given.streams.audio[0]
        copied = output.add_stream_from_template(audio)
        output.metadata.update(given.metadata)
        copied.metadata.update(audio.metadata)
        for number, packet in enumerate(given.demux(audio)):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            if number % CANCEL_CHECK_EVERY == CANCEL_CHECK_EVERY - 1 and events.cancelled():
                raise Cancelled()
            packet.stream = copied
            output.mux(packet)
