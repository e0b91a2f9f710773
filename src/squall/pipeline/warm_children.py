"""Downloader children kept warm between jobs of one tenant with the same settings.

A fresh child per job pays a fork, a cold interpreter (yt-dlp's first ``YoutubeDL``, regexes
compiled again) and its exit: about 55 ms of CPU per job against a warm process
(``docs/BENCHMARKS.md``, "Warm downloader children"). A child that ended a job cleanly may
take the next job of the same tenant (an API key) through the same proxy, URL policy and
downloader configuration: what it installed for its whole life (the connect-time guard, the
proxy guard, the plugins) is then exactly what the next job needs, and nothing it holds
(yt-dlp's caches, its TLS and cookie state) ever reaches another tenant's job. Each job still
gets its own ``YoutubeDL``, its own cookie file and work directory.

A child is kept only after a "done" answer for a job that was not a live recording; a failed,
cancelled or timed-out job kills the child's whole process group, as before."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from squall.pipeline.urlguard import UrlPolicy
from squall.pipeline.ytdlp_config import DownloaderConfig

IDLE_EXIT_SECONDS = 60.0  # an idle child ends itself after this long
MAX_IDLE = 4  # idle children kept in one process (a worker runs one job per thread)
JOBS_PER_CHILD = 100  # then a fresh one: what a long life accumulates stays bounded
IDLE_SECONDS = IDLE_EXIT_SECONDS / 2  # never hand a job to a child about to end itself


@dataclass(frozen=True)
class Identity:
    """What a child installs for its whole life, and whose jobs it may run."""

    tenant: str
    proxy: str | None
    url_policy: UrlPolicy
    downloader: DownloaderConfig


@dataclass(eq=False)
class Child:
    process: Any  # a multiprocessing Process from the forkserver context
    receiver: Connection  # child -> parent: progress and answers
    control: Connection  # parent -> child: jobs, room and stop
    identity: Identity | None  # None: one job only
    jobs: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        """Kill the child's process group (FFmpeg it started included) and forget it."""
        kill_group(self.process)
        self.process.join(timeout=5)
        self.receiver.close()
        self.control.close()


def kill_group(process: Any) -> None:
    """Kill the child's process group (FFmpeg it started included), even if the child itself
    has exited. The group id is the child's pid, so no other process group is touched."""
    if process.pid is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if process.is_alive():  # it died before os.setpgrp(): kill it alone
            process.kill()


_idle: list[Child] = []
_lock = threading.Lock()


def take(identity: Identity | None) -> Child | None:
    """An idle child for ``identity``, alive and not about to end itself; None if there is none."""
    if identity is None:
        return None
    found, expired = None, []
    now = time.monotonic()
    with _lock:
        for child in list(_idle):
            if now - child.idle_since > IDLE_SECONDS or not child.process.is_alive():
                _idle.remove(child)
                expired.append(child)
            elif found is None and child.identity == identity:
                _idle.remove(child)
                found = child
    for child in expired:
        child.close()
    return found


def keep(child: Child) -> None:
    """Keep ``child`` for its identity's next job, or close it when it may not run another."""
    if child.identity is None or child.jobs >= JOBS_PER_CHILD or not child.process.is_alive():
        child.close()
        return
    child.idle_since = time.monotonic()
    with _lock:
        _idle.append(child)
        extra = _idle[:-MAX_IDLE] if len(_idle) > MAX_IDLE else []
        del _idle[: len(extra)]
    for old in extra:  # the longest idle go first
        old.close()


def idle_pids() -> list[int]:
    """The process ids of the idle children (for tests and the benchmarks)."""
    with _lock:
        return [int(child.process.pid) for child in _idle]


def close_idle() -> None:
    """End every idle child (a worker shutting down; they would end on their own anyway)."""
    with _lock:
        children = list(_idle)
        _idle.clear()
    for child in children:
        child.close()
