"""Shared helpers for the benchmarks: a scratch database, a Squall server in a subprocess,
percentiles. Everything cleans up after itself, on errors and on Ctrl-C too."""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class BenchEnv:
    """A temporary data directory and database, and the environment a Squall process needs
    to use them."""

    db: str
    data_dir: Path
    database_url: str
    secret_key: str

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
        env.update(
            SQUALL_DATA_DIR=str(self.data_dir),
            SQUALL_DATABASE_URL=self.database_url,
            SQUALL_SECRET_KEY=self.secret_key,
            SQUALL_ALLOW_PRIVATE_URLS="true",
            SQUALL_DEFAULT_RESERVATION_MB="0",
        )
        env.update(extra)
        return env


def bare_ytdlp_options(workdir: Path, ffmpeg: str, format_spec: str) -> dict[str, Any]:
    """The bare chain's yt-dlp options (``bench.pipeline``, ``bench.small_jobs``): quiet, no
    cache, the source saved as ``workdir/source.<ext>``."""
    return {
        "quiet": True,
        "noprogress": True,
        "no_warnings": True,
        "noplaylist": True,
        "cachedir": False,
        "paths": {"home": str(workdir)},
        "outtmpl": {"default": "source.%(ext)s"},
        "format": format_spec,
        "ffmpeg_location": ffmpeg,
    }


def run_main(main: Callable[[], int]) -> NoReturn:
    """Run a benchmark's ``main`` so that Ctrl-C and SIGTERM still run every ``finally``
    (server stopped, scratch database dropped, temp dir removed) and end it quietly."""

    def _terminate(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of ``SQUALL_BENCH_DATABASE_URL``,
    dropped afterwards. Yields its SQLAlchemy URL."""
    base = make_url(os.environ.get("SQUALL_BENCH_DATABASE_URL", DEFAULT_PG_URL))
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"squall_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        print(f"dropped scratch database {name}")


@contextmanager
def bench_env(db: str) -> Iterator[BenchEnv]:
    """A temporary data directory plus a SQLite file in it or a scratch PostgreSQL database."""
    if db not in DATABASES:
        raise SystemExit(f"--db must be one of {', '.join(DATABASES)}")
    data_dir = Path(tempfile.mkdtemp(prefix="squall-bench-"))
    secret = secrets.token_urlsafe(32)
    try:
        if db == "sqlite":
            yield BenchEnv(db, data_dir, f"sqlite:///{data_dir / 'squall.db'}", secret)
        else:
            with scratch_postgres() as url:
                yield BenchEnv(db, data_dir, url, secret)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def squall_cli(env: BenchEnv, *args: str) -> str:
    """Run ``python -m squall ARGS`` against the bench database; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "squall", *args],
        env=env.environ(),
        cwd=env.data_dir,  # no stray .env file from the checkout
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"squall {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


@contextmanager
def squall_server(
    env: BenchEnv, *, timeout: float = 60.0, api_processes: int = 1, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """``squall serve --workers 0`` on a free loopback port; yields its base URL. ``settings``:
    more ``SQUALL_*`` variables for the server."""
    port = free_port()
    log_path = env.data_dir / "server.log"
    with log_path.open("wb") as log:
        command = ["serve", "--workers", "0", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--api-processes", str(api_processes)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "squall", *command],
            env=env.environ(**(settings or {})),
            cwd=env.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C reaches us, and we stop it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, timeout, log_path)
        print(f"server pid {proc.pid} listening on {base}")
        yield base
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"server did not start (exit code {proc.poll()}); its log ends:\n{tail}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own group, created by start_new_session
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_http(proc: subprocess.Popen[bytes], url: str, timeout: float, what: str) -> None:
    """Until ``url`` answers at all (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout:g} s")


@contextmanager
def background(command: list[str], url: str, what: str, log_path: Path) -> Iterator[int]:
    """A helper server in its own process group, stopped afterwards; yields its pid."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(proc, url, 30.0, what)
        print(f"{what}: pid {proc.pid} at {url}")
        yield proc.pid
    finally:
        _stop(proc)
