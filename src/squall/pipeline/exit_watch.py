"""Wait for a child process to end, woken the moment it does.

``Popen.wait(timeout)`` polls with sleeps that grow to 50 ms, so a 200 ms FFmpeg run was
noticed up to 50 ms late (about 12 ms on average in ``bench.pipeline``). On Linux a pidfd
becomes readable when the process ends; elsewhere, or on a kernel without pidfds, the poll
stays."""

from __future__ import annotations

import os
import select
import subprocess
from types import TracebackType
from typing import Any


class ExitWatch:
    def __init__(self, process: subprocess.Popen[Any]) -> None:
        self.process = process
        try:
            self._pidfd: int | None = os.pidfd_open(process.pid)
        except (AttributeError, OSError):  # not Linux, or a kernel older than 5.3
            self._pidfd = None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after ``timeout`` seconds."""
        if self._pidfd is None:
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        readable = select.poll()
        readable.register(self._pidfd, select.POLLIN)
        if not readable.poll(timeout * 1000):
            return None
        return self.process.wait()  # it has ended: this only reaps it

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
