"""yt-dlp in a child process: its own process group, so cancel and timeouts kill it and any
FFmpeg it started; and its own interpreter state, since yt-dlp is not thread-safe.

Children come from a forkserver that has imported yt-dlp once, so starting one costs a fork,
not an interpreter start and a 0.2 s import; a child that ended a job cleanly may run the next
job of the same tenant and settings (``warm_children``), which saves the fork and a cold start."""

from __future__ import annotations

import multiprocessing
import time
from functools import lru_cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from squall.errors import QUOTA_EXCEEDED, JobFailure
from squall.pipeline.binaries import ffmpeg_path
from squall.pipeline.cookies import child_cookie_file
from squall.pipeline.failures import Classified
from squall.pipeline.live import LiveLine, live_result
from squall.pipeline.proxies import ClientBlamed, proxy_order, through_proxies
from squall.pipeline.spec import Cancelled, DownloadResult, JobSpec, PipelineEvents
from squall.pipeline.warm_children import Child, Identity, keep, take

PROGRESS_EVERY_SECONDS = 0.5


@lru_cache
def downloader_context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["squall.pipeline.ytdlp_preload"])
    return ctx


def download(spec: JobSpec, workdir: Path, events: PipelineEvents) -> DownloadResult:
    """The source, downloaded by a child through each configured proxy in turn while the
    source blames the client, with the operator's and the key's cookies."""
    config = spec.downloader
    deadline = time.monotonic() + spec.timeout_seconds

    def wait(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if events.cancelled():
                raise Cancelled()
            time.sleep(min(0.2, max(0.0, until - time.monotonic())))

    with child_cookie_file(config.cookies_file, spec.cookies) as cookiefile:
        return through_proxies(
            proxy_order(config.proxies, spec.job_id),
            lambda proxy: _download_once(spec, workdir, events, deadline, proxy, cookiefile),
            wait,
            config.proxy_backoff_seconds,
        )


def _download_once(
    spec: JobSpec, workdir: Path, events: PipelineEvents, deadline: float, proxy: str | None,
    cookiefile: str | None,
) -> DownloadResult:  # fmt: skip
    identity = (
        Identity(spec.tenant, proxy, spec.url_policy, spec.downloader) if spec.tenant is not None else None
    )
    job_options = {
        "cookiefile": cookiefile,
        "socket_timeout": spec.socket_timeout,
        "ffmpeg": ffmpeg_path(),
        "max_resolution": spec.max_resolution,
        "max_duration": spec.max_duration_seconds,
        "max_filesize": spec.max_filesize_bytes,
        "container": spec.container,
        "audio_only": spec.audio_output,
        "subtitles": spec.subtitles,
        "thumbnail": spec.thumbnail,
        "live_recording": spec.live_recording,
        "live_from_start": spec.live_from_start,
        "wait_for_video": spec.wait_for_video,
        "wait_seconds": spec.live_wait_seconds,
        "live_limit_seconds": min(spec.live_caps().values()),
    }
    job = ("job", spec.url, str(workdir), job_options)
    child = _handed(take(identity), job) or _handed(_start_child(spec, proxy, identity), job, fresh=True)
    assert child is not None
    reusable = False
    try:
        line = LiveLine(child.control, spec, events, deadline)
        result = live_result(_follow(child.process, child.receiver, line), line)
        reusable = not line.live and not result.info.get("live")
        return result
    finally:
        if reusable:
            keep(child)
        else:
            child.close()


def _handed(child: Child | None, job: tuple[Any, ...], *, fresh: bool = False) -> Child | None:
    """``child`` once it has ``job``; None if an idle one ended meanwhile (a fresh one's end
    shows as the downloader stopping)."""
    if child is None:
        return None
    child.jobs += 1
    try:
        child.control.send(job)
    except OSError:
        if fresh:
            return child
        child.close()
        return None
    return child


def _start_child(spec: JobSpec, proxy: str | None, identity: Identity | None) -> Child:
    """A new child set up for ``spec``'s URL policy and downloader settings through ``proxy``."""
    from squall.pipeline import ytdlp_child

    ctx = downloader_context()
    receiver, sender = ctx.Pipe(duplex=False)
    control_receiver, control = ctx.Pipe(duplex=False)  # parent -> child: jobs, room and stop
    options = {"downloader": spec.downloader, "proxy": proxy, "url_policy": spec.url_policy}
    process = ctx.Process(target=ytdlp_child.serve, args=(sender, control_receiver, options))
    process.start()
    sender.close()
    control_receiver.close()
    return Child(process, receiver, control, identity)


def _follow(process: Any, receiver: Connection, line: LiveLine) -> DownloadResult:
    spec, events = line.spec, line.events
    while True:
        if receiver.poll(0.2):
            try:
                kind, payload = receiver.recv()
            except EOFError:
                break
            if kind == "progress":
                line.downloading()
                expected, exact = payload
                if expected and not events.need_bytes(int(expected), exact=exact):
                    raise quota_failure()
            elif kind == "done":
                return DownloadResult(**payload)
            elif kind == "failed":
                raise failure_of(Classified(**payload))
            else:
                line.handle(kind, payload)
        elif not process.is_alive() and not receiver.poll(0):
            break
        if events.cancelled():
            raise Cancelled()
        line.pass_on_stop()
        if time.monotonic() > line.deadline:
            raise JobFailure(
                f"The download took longer than {spec.timeout_seconds:g} seconds and was stopped"
            )
    raise JobFailure("The downloader stopped unexpectedly", retryable=True)


def failure_of(failure: Classified) -> JobFailure:
    kind = ClientBlamed if failure.client_blamed else JobFailure
    return kind(failure.message, outcome=failure.outcome, retryable=failure.retryable)


def quota_failure() -> JobFailure:
    """The job needs more room than its key's quota has left (the error Tornado clients know)."""
    return JobFailure(QUOTA_EXCEEDED)
