"""``ExitWatch`` gives a child's exit code once it has ended and None while it runs, with a
pidfd or, where there is none, with Popen's own wait; ``run_ffmpeg`` built on it still stops
and reaps a child that is cancelled or runs too long."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from typing import Any

import pytest

from squall.errors import JobFailure
from squall.pipeline.exit_watch import ExitWatch
from squall.pipeline.process import run_ffmpeg
from squall.pipeline.spec import Cancelled

ENDS_WITH_3 = [sys.executable, "-c", "raise SystemExit(3)"]
WAITS_FOR_STDIN = [sys.executable, "-c", "import sys; sys.stdin.read()"]


def no_pidfd(pid: int) -> int:
    raise OSError(38, "Function not implemented")


def no_timed_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a pidfd, Popen's polling wait must not be what notices the end."""
    real_wait = subprocess.Popen.wait

    def wait(self: subprocess.Popen[Any], timeout: float | None = None) -> int:
        assert timeout is None, "Popen.wait(timeout) polled while a pidfd was open"
        return real_wait(self)

    monkeypatch.setattr(subprocess.Popen, "wait", wait)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "popen-wait"])
def test_the_exit_code_once_ended_and_none_while_running(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("this platform has no pidfd (Linux only); the Popen-wait case covers it")
    else:
        no_timed_waits(monkeypatch)
    with subprocess.Popen(WAITS_FOR_STDIN, stdin=subprocess.PIPE) as running, ExitWatch(running) as watch:
        assert (watch._pidfd is not None) is pidfd
        assert watch.wait(0.05) is None
        assert running.stdin is not None
        running.stdin.close()  # now it ends
        assert watch.wait(30) == 0
    with subprocess.Popen(ENDS_WITH_3) as ended, ExitWatch(ended) as watch:
        assert watch.wait(30) == 3
        assert ended.returncode == 3  # reaped: no zombie left behind
    assert watch._pidfd is None  # closed with the watch


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="this platform has no pidfd (Linux only)")
def test_an_error_on_the_pidfd_falls_back_to_popen_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    class ErrorPoll:
        def register(self, fd: int, events: int) -> None:
            pass

        def poll(self, timeout_ms: float) -> list[tuple[int, int]]:
            return [(0, select.POLLERR)]

    monkeypatch.setattr(select, "poll", ErrorPoll)
    with subprocess.Popen(ENDS_WITH_3) as ended, ExitWatch(ended) as watch:
        assert watch._pidfd is not None
        assert watch.wait(30) == 3
        assert watch._pidfd is None  # closed: Popen's own wait answered


class Events:
    def __init__(self, cancel: bool) -> None:
        self.cancel = cancel

    def cancelled(self) -> bool:
        return self.cancel


SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]  # a long FFmpeg run's stand-in


def started_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[Any]]:
    started: list[subprocess.Popen[Any]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    return started


def assert_gone(started: list[subprocess.Popen[Any]]) -> None:
    (child,) = started
    assert child.returncode is not None  # reaped
    with pytest.raises(ProcessLookupError):  # killed: not even a zombie is left
        os.kill(child.pid, 0)


def test_a_cancelled_run_stops_its_child(monkeypatch: pytest.MonkeyPatch) -> None:
    started = started_processes(monkeypatch)
    with pytest.raises(Cancelled):
        run_ffmpeg(SLEEPER, Events(cancel=True), timeout_seconds=600)  # type: ignore[arg-type]
    assert_gone(started)


def test_a_run_past_its_timeout_fails_and_stops_its_child(monkeypatch: pytest.MonkeyPatch) -> None:
    started = started_processes(monkeypatch)
    with pytest.raises(JobFailure, match=r"longer than 0\.3 seconds"):
        run_ffmpeg(SLEEPER, Events(cancel=False), timeout_seconds=0.3)  # type: ignore[arg-type]
    assert_gone(started)
