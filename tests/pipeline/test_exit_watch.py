"""``ExitWatch`` gives a child's exit code once it has ended and None while it runs, with a
pidfd or, where there is none, with Popen's own wait."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from squall.pipeline.exit_watch import ExitWatch

ENDS_WITH_3 = [sys.executable, "-c", "raise SystemExit(3)"]
WAITS_FOR_STDIN = [sys.executable, "-c", "import sys; sys.stdin.read()"]


def no_pidfd(pid: int) -> int:
    raise OSError(38, "Function not implemented")


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "popen-wait"])
def test_the_exit_code_once_ended_and_none_while_running(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("this platform has no pidfd (Linux only); the Popen-wait case covers it")
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
