"""Pipeline overhead: end-to-end wall time of a remux job (``POST /jobs`` until ``GET
/jobs/{id}`` says Completed) on a generated ~200 MB MP4, against the bare chain measured in
the same run: yt-dlp download + ``ffmpeg -c copy`` + copy (local) or ``upload_file`` (S3) of
the result. Target: squall / bare <= 1.15, for local storage and for S3.

    python -m bench.pipeline [--runs 6] [--rss-jobs 200] [--skip-s3] [--poll-seconds S]

Setup, once per run: FFmpeg (``ffmpeg_path()``, as Squall uses) generates the source (16 s of
noisy 720p H.264 + AAC, ~12 MB/s) and a 2 s 320x180 clip into a temp dir, which
``python -m http.server`` serves from its own process. Squall is ``squall serve --workers 1``
on SQLite with its default settings (``SQUALL_POLL_SECONDS`` only if ``--poll-seconds`` is
given: the default poll of 0.5 s is part of what a job costs, and its share shows as
``queue_wait``). S3 is ``moto_server`` on loopback, with a second Squall server configured
for it (``SQUALL_STORAGE=s3``, path addressing).

The bare chain runs inside this process with yt-dlp already imported and its extractors
warmed up, so it pays no interpreter start and no import: a strict baseline. One unmeasured
warm-up job (the measured job itself) goes first on each side, so Squall's downloader child
is up and the bare chain's extractor patterns are compiled. Then squall and bare run
``--runs`` times in ABBA order (squall first in runs 1, 4, 5, …), and each run deletes what
both sides stored. This VM gives memory that stays free for ~2 s back to its host, and
writing it again costs ~1 ms per MB (the first measured job alone used to pay that, up to
200 ms), so before each measured job 1 GB (at least four times the source) is written and freed
(``touch_free_memory``), and the job's files land in pages the VM holds. Each run is printed
with its phases (Squall's from the job's own ``*_duration_ms`` fields and
``total_duration_ms``), and the ratio uses the medians: of 6 runs by default, as one job's
S3 store varies by ±200 ms here on either side, and a median of 3 sometimes took two slow
ones from the same side.

Memory: the local server then runs ``--rss-jobs`` jobs of the small clip one after another
(two in the queue at a time, so the single worker never idles), and the worker process's
VmRSS (``/proc/<pid>/status``; its short-lived forkserver and yt-dlp children not counted) is
reported after job 10 (start, past warm-up) and after the last job (end).

A key's own bucket (issue 13): on the same S3 server and the same Squall server, a second key
configured with ``POST /user/s3`` (another bucket) runs the same job ``--runs`` times,
alternating with the first key, which stores into the operator's bucket; ``byo_ratio`` is
the median per-key time over the median operator time (target <= 1.05: choosing the backend
per job costs nothing measurable).

Last line: ``RESULT pipeline squall_s=… bare_s=… ratio=<squall / bare> s3_squall_s=…
s3_bare_s=… s3_ratio=… rss_start_mb=… rss_end_mb=… byo_ratio=<per-key / operator>``
(``nan`` for a skipped part).
"""

from __future__ import annotations

import argparse
import json
import mmap
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import yt_dlp
from botocore.config import Config

from bench._common import (
    BenchEnv,
    _stop,
    _wait_ready,
    background,
    bare_ytdlp_options,
    bench_env,
    free_port,
    run_main,
    squall_cli,
)
from squall.pipeline.binaries import ffmpeg_path

SOURCE_NAME = "source.mp4"
SMALL_NAME = "small.mp4"
POLL_EVERY = 0.02  # GET /jobs/{id} interval while waiting for a job
JOB_TIMEOUT = 600.0
ENDED = ("Completed", "Failed", "Warning", "Skipped", "Cancelled")
BUCKET = "squall-bench"
OWN_BUCKET = "squall-bench-own"  # a key's own bucket, on the same server
S3_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
MB_FLOAT = 1024 * 1024
TOUCH_MB = 1024  # more than a job writes (source, output, the bare chain's copy); set from the source


# --- processes ------------------------------------------------------------------------------


@contextmanager
def squall_serve(
    env: BenchEnv, *, workers: int, extra: dict[str, str], timeout: float = 60.0
) -> Iterator[tuple[str, int]]:
    """``squall serve --workers N`` (``_common.squall_server`` runs API-only servers) with
    extra environment; yields its base URL and pid."""
    port = free_port()
    log_path = env.data_dir / "server.log"
    with log_path.open("wb") as log:
        command = ["serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "squall", *command],
            env=env.environ(**extra),
            cwd=env.data_dir,  # no stray .env file from the checkout
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, timeout, log_path)
        print(f"squall serve --workers {workers}: pid {proc.pid} at {base}")
        yield base, proc.pid
    finally:
        _stop(proc)


def _children(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in children.read_text().split()]
        except OSError:  # the task ended meanwhile
            continue
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def find_worker(serve_pid: int) -> int:
    """The embedded worker: the descendant of ``squall serve`` started as ``-m squall worker``."""
    pending, picked = deque([serve_pid]), None
    while pending:
        pid = pending.popleft()
        argv = _cmdline(pid)
        is_worker = argv[1:4] == ["-m", "squall", "worker"]
        mark = "  <- worker" if is_worker else ""
        print(f"  pid {pid}: {' '.join(argv)[:150]}{mark}")
        if is_worker and picked is None:
            picked = pid
        pending.extend(_children(pid))
    if picked is None:
        raise RuntimeError(f"no `squall worker` process under pid {serve_pid}")
    return picked


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- media ----------------------------------------------------------------------------------


def generate(ffmpeg: str, target: Path, *, seconds: int, size: str, noise: bool) -> None:
    video = ["-vf", "noise=alls=30:allf=t"] if noise else []
    command = [
        *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
        *video,
        *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-g", "50"),
        *("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(target)),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    size_mb = target.stat().st_size / MB_FLOAT
    print(
        f"generated {target.name}: {size_mb:.1f} MB, {seconds} s {size} ({time.perf_counter() - started:.1f} s)"
    )


# --- the two chains -------------------------------------------------------------------------


@dataclass
class Timed:
    wall_s: float
    phases_ms: dict[str, float] = field(default_factory=dict)
    job_id: str | None = None  # Squall's side


class Squall:
    """One Squall server, driven through its HTTP API."""

    def __init__(self, base: str, api_key: str) -> None:
        self.client = httpx.Client(base_url=base, headers={"x-api-key": api_key}, timeout=30.0)

    def close(self) -> None:
        self.client.close()

    def submit(self, url: str, filename: str) -> str:
        answer = self.client.post("/jobs", json={"url": url, "filename": filename})
        answer.raise_for_status()
        return str(answer.json()["job_id"])

    def wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.client.get(f"/jobs/{job_id}").json()
            if job.get("status") in ENDED:
                if job["status"] != "Completed":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
                return job
            time.sleep(POLL_EVERY)
        raise RuntimeError(f"job {job_id} not done after {JOB_TIMEOUT:g} s")

    def run(self, url: str, filename: str) -> Timed:
        started = time.perf_counter()
        job_id = self.submit(url, filename)
        job = self.wait(job_id)
        wall = time.perf_counter() - started
        phases = {
            "queue": float(job.get("queue_wait_ms") or 0),
            "download": float(job.get("download_duration_ms") or 0),
            "mux": float(job.get("mux_duration_ms") or 0),
            "store": float(job.get("upload_duration_ms") or 0),
        }
        in_job = float(job["total_duration_ms"])  # created_at -> finished_at, the job's own clock
        phases["commits"] = in_job - sum(phases.values())  # claim, step and completion writes
        phases["api"] = wall * 1000 - in_job  # POST round trip, and status polling noticing the end
        return Timed(wall, phases, job_id)

    def drop_file(self, job_id: str) -> None:
        self.client.delete(f"/jobs/{job_id}/file").raise_for_status()


class Bare:
    """yt-dlp in this process + ``ffmpeg -c copy`` + a store function, timed as one chain."""

    def __init__(self, ffmpeg: str, work: Path) -> None:
        self.ffmpeg, self.work = ffmpeg, work

    def run(self, url: str, name: str, store: Callable[[Path, str], None]) -> Timed:
        workdir = self.work / name
        options = bare_ytdlp_options(workdir, self.ffmpeg, "bv*+ba/b")
        output = workdir / "output.mp4"
        try:
            started = time.perf_counter()
            with yt_dlp.YoutubeDL(options) as ydl:  # type: ignore[no-untyped-call]
                if ydl.download([url]) != 0:
                    raise RuntimeError(f"yt-dlp could not download {url}")
            downloaded = time.perf_counter()
            (source,) = [p for p in workdir.iterdir() if p.name.startswith("source.")]
            command = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
            command += ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart"]
            subprocess.run([*command, str(output)], check=True)
            muxed = time.perf_counter()
            store(output, f"{name}.mp4")
            stored = time.perf_counter()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        phases = {
            "download": (downloaded - started) * 1000,
            "mux": (muxed - downloaded) * 1000,
            "store": (stored - muxed) * 1000,
        }
        return Timed(stored - started, phases)


# --- the comparison -------------------------------------------------------------------------


def touch_free_memory() -> None:
    """Write ``TOUCH_MB`` MB and free them, just before a measured job: the files the job
    writes then land in pages this VM holds. Its balloon returns memory free for ~2 s to the
    host, which gives it back on first write at ~1 ms per MB: without this, a side paid that
    whenever the job before it had taken the warm pages (docs/BENCHMARKS.md, "Pipeline")."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE  # every page faulted in now
    mmap.mmap(-1, TOUCH_MB * 1024 * 1024, flags=flags).close()


@dataclass
class Compared:
    squall: list[Timed]
    bare: list[Timed]

    @property
    def squall_s(self) -> float:
        return statistics.median(t.wall_s for t in self.squall)

    @property
    def bare_s(self) -> float:
        return statistics.median(t.wall_s for t in self.bare)

    @property
    def ratio(self) -> float:
        return self.squall_s / self.bare_s


def _phases(timed: Timed) -> str:
    return " ".join(f"{k}={v:.0f}" for k, v in timed.phases_ms.items())


def compare(
    label: str,
    squall: Squall,
    bare: Bare,
    media: str,
    runs: int,
    store: Callable[[Path, str], None],
    after_run: Callable[[str, str | None], None] | None = None,
) -> Compared:
    source = f"{media}/{SOURCE_NAME}"
    # The warm-up is the measured job itself (Squall's downloader child starts, yt-dlp's
    # patterns compile); what each measured job writes lands in memory touched just before.
    warm_squall = squall.run(source, f"{label}-warmup")
    warm_bare = bare.run(source, f"{label}-warmup", store)
    if after_run:
        after_run(f"{label}-warmup", warm_squall.job_id)
    print(f"warm-up (not counted): squall {warm_squall.wall_s:.3f} s  bare {warm_bare.wall_s:.3f} s")
    result = Compared([], [])
    for i in range(1, runs + 1):
        name = f"{label}-run-{i}"

        def squall_side(name: str = name) -> None:
            touch_free_memory()
            result.squall.append(squall.run(source, name))

        def bare_side(name: str = name) -> None:
            touch_free_memory()
            result.bare.append(bare.run(source, f"{name}-bare", store))

        # ABBA: squall first in runs 1, 4, 5, 8, …, so neither side mostly follows the other
        sides = (squall_side, bare_side) if i % 4 in (0, 1) else (bare_side, squall_side)
        for side in sides:
            side()
        s, b = result.squall[-1], result.bare[-1]
        print(f"run {i}  squall {s.wall_s:6.3f} s  [ms: {_phases(s)}]")
        print(f"       bare   {b.wall_s:6.3f} s  [ms: {_phases(b)}]")
        if after_run:
            after_run(name, s.job_id)
    table = [("queue wait (worker poll)", "queue"), ("download (yt-dlp)", "download")]
    table += [("mux (ffmpeg -c copy; squall: + 2 probes)", "mux"), ("store", "store")]
    table += [("commits (claim, steps, completion)", "commits")]
    table += [("API (POST, polling noticing the end)", "api")]
    print(f"{label} medians, ms:".ljust(47) + "squall     bare")
    for title, key in table:
        sq = statistics.median(t.phases_ms.get(key, 0.0) for t in result.squall)
        values = [t.phases_ms[key] for t in result.bare if key in t.phases_ms]
        ba = f"{statistics.median(values):8.0f}" if values else "       -"
        print(f"  {title:<44} {sq:8.0f} {ba}")
    print(f"  {'wall':<44} {result.squall_s * 1000:8.0f} {result.bare_s * 1000:8.0f}")
    verdict = "met" if result.ratio <= 1.15 else "MISSED"
    print(
        f"{label}: squall {result.squall_s:.3f} s  bare {result.bare_s:.3f} s  "
        f"ratio {result.ratio:.3f} (target <= 1.15: {verdict})"
    )
    return result


def rss_phase(squall: Squall, serve_pid: int, media: str, jobs: int) -> tuple[float, float]:
    print(f"processes under squall serve (pid {serve_pid}):")
    worker = find_worker(serve_pid)
    start_at = min(10, jobs)
    url = f"{media}/{SMALL_NAME}"
    queued: deque[str] = deque()
    submitted, samples = 0, {}
    started = time.perf_counter()
    for done in range(1, jobs + 1):
        while submitted < jobs and len(queued) < 2:  # the next job waits while one runs
            submitted += 1
            queued.append(squall.submit(url, f"rss-{submitted}"))
        squall.wait(queued.popleft())
        if done in (start_at, jobs) or done % 50 == 0:
            samples[done] = rss_mb(worker)
            print(
                f"  after job {done:>4}: worker RSS {samples[done]:7.2f} MB  ({time.perf_counter() - started:5.1f} s)"
            )
    first, last = samples[start_at], samples[jobs]
    print(
        f"worker RSS over {jobs} jobs: {first:.2f} MB after job {start_at} -> {last:.2f} MB after job {jobs} "
        f"({last - first:+.2f} MB, {(last / first - 1) * 100:+.1f}%)"
    )
    return first, last


# --- the benchmark --------------------------------------------------------------------------


def _server_env(poll_seconds: float | None, **extra: str) -> dict[str, str]:
    if poll_seconds is not None:
        extra["SQUALL_POLL_SECONDS"] = str(poll_seconds)
    return extra


def _api_key(env: BenchEnv) -> str:
    squall_cli(env, "db", "upgrade")
    return str(json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))["api_key"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=6, help="measured jobs per side (alternating)")
    parser.add_argument("--rss-jobs", type=int, default=200, help="small jobs for the RSS check (0 skips)")
    parser.add_argument("--skip-s3", action="store_true", help="no S3 (moto_server) comparison")
    parser.add_argument("--source-seconds", type=int, default=16, help="source length (~12 MB per s)")
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="set SQUALL_POLL_SECONDS for the servers (default: Squall's own, 0.5 s)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")

    ffmpeg = ffmpeg_path()
    poll = (
        "Squall's default (0.5 s)"
        if args.poll_seconds is None
        else f"{args.poll_seconds:g} s (--poll-seconds)"
    )
    print(f"ffmpeg: {ffmpeg}\nyt-dlp {yt_dlp.version.__version__}, worker poll: {poll}")
    nan = float("nan")
    local: Compared | None = None
    s3: Compared | None = None
    byo: Compared | None = None  # squall: the key's own bucket; bare: the operator's bucket
    rss = (nan, nan)

    scratch = Path(tempfile.mkdtemp(prefix="squall-bench-pipeline-"))
    try:
        media_dir, bare_store = scratch / "media", scratch / "bare-storage"
        media_dir.mkdir()
        bare_store.mkdir()
        generate(ffmpeg, media_dir / SOURCE_NAME, seconds=args.source_seconds, size="1280x720", noise=True)
        global TOUCH_MB
        TOUCH_MB = max(TOUCH_MB, 4 * int((media_dir / SOURCE_NAME).stat().st_size / MB_FLOAT))
        generate(ffmpeg, media_dir / SMALL_NAME, seconds=2, size="320x180", noise=False)
        bare = Bare(ffmpeg, scratch / "bare-work")

        media_port = free_port()
        media_command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(media_port)]
        media_command += ["--directory", str(media_dir)]
        media = f"http://127.0.0.1:{media_port}"
        with background(media_command, f"{media}/{SMALL_NAME}", "media server", scratch / "media.log"):

            def copy_to_storage(output: Path, key: str) -> None:
                shutil.copyfile(output, bare_store / key)

            def drop_outputs(squall: Squall) -> Callable[[str, str | None], None]:
                def drop(name: str, job_id: str | None) -> None:  # each run frees what it stored
                    (bare_store / f"{name}-bare.mp4").unlink(missing_ok=True)
                    (bare_store / f"{name}.mp4").unlink(missing_ok=True)  # the warm-up's
                    if job_id:
                        squall.drop_file(job_id)

                return drop

            print("\n== local storage ==")
            with bench_env("sqlite") as env:
                key = _api_key(env)
                with squall_serve(env, workers=1, extra=_server_env(args.poll_seconds)) as (base, pid):
                    squall = Squall(base, key)
                    try:
                        local = compare(
                            "local", squall, bare, media, args.runs, copy_to_storage, drop_outputs(squall)
                        )
                        if args.rss_jobs > 0:
                            print(f"\n== worker memory over {args.rss_jobs} small jobs ==")
                            rss = rss_phase(squall, pid, media, args.rss_jobs)
                    finally:
                        squall.close()

            if not args.skip_s3:
                print("\n== S3 storage (moto_server) ==")
                s3, byo = s3_phase(args, bare, media, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def num(value: float) -> str:
        return f"{value:.3f}"

    assert local is not None
    print(
        f"RESULT pipeline squall_s={num(local.squall_s)} bare_s={num(local.bare_s)} ratio={num(local.ratio)} "
        f"s3_squall_s={num(s3.squall_s if s3 else nan)} s3_bare_s={num(s3.bare_s if s3 else nan)} "
        f"s3_ratio={num(s3.ratio if s3 else nan)} rss_start_mb={rss[0]:.2f} rss_end_mb={rss[1]:.2f} "
        f"byo_ratio={num(byo.ratio if byo else nan)}"
    )
    return 0


def s3_phase(args: argparse.Namespace, bare: Bare, media: str, scratch: Path) -> tuple[Compared, Compared]:
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if moto is None:
        raise SystemExit("moto_server not found (pip install 'moto[server]'), or pass --skip-s3")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with background(
        [moto, "-H", "127.0.0.1", "-p", str(port)], endpoint, "moto_server", scratch / "moto.log"
    ):
        client: Any = boto3.client(
            "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}), **S3_CREDENTIALS
        )
        client.create_bucket(Bucket=BUCKET)

        def upload(output: Path, key: str) -> None:
            client.upload_file(str(output), BUCKET, f"bare/{key}")

        def drop_objects(name: str, _job_id: str | None) -> None:  # moto keeps objects in memory
            for key in (f"{name}.mp4", f"bare/{name}-bare.mp4", f"bare/{name}.mp4"):
                client.delete_object(Bucket=BUCKET, Key=key)

        extra = _server_env(
            args.poll_seconds,
            SQUALL_STORAGE="s3",
            SQUALL_S3_ENDPOINT_URL=endpoint,
            SQUALL_S3_BUCKET=BUCKET,
            SQUALL_S3_ACCESS_KEY_ID=S3_CREDENTIALS["aws_access_key_id"],
            SQUALL_S3_SECRET_ACCESS_KEY=S3_CREDENTIALS["aws_secret_access_key"],
            SQUALL_S3_REGION=S3_CREDENTIALS["region_name"],
            SQUALL_S3_ADDRESSING_STYLE="path",
        )
        with bench_env("sqlite") as env:
            key = _api_key(env)
            own_key = str(json.loads(squall_cli(env, "keys", "create", "--name", "byo", "--json"))["api_key"])
            with squall_serve(env, workers=1, extra=extra) as (base, _pid):
                squall, own = Squall(base, key), Squall(base, own_key)
                try:
                    operator = compare("s3", squall, bare, media, args.runs, upload, drop_objects)
                    client.create_bucket(Bucket=OWN_BUCKET)
                    return operator, byo_phase(squall, own, endpoint, media, args.runs)
                finally:
                    squall.close()
                    own.close()


def byo_phase(operator: Squall, own: Squall, endpoint: str, media: str, runs: int) -> Compared:
    """The same job for a key with its own bucket and for a key on the operator's, alternating."""
    print("\n== a key's own S3 bucket vs the operator's (same moto_server, same Squall) ==")
    body = {"endpoint": endpoint, "bucket": OWN_BUCKET, "region": S3_CREDENTIALS["region_name"],
            "access_key": S3_CREDENTIALS["aws_access_key_id"], "secret_key": S3_CREDENTIALS["aws_secret_access_key"]}  # fmt: skip
    own.client.post("/user/s3", json=body).raise_for_status()
    own.run(f"{media}/{SMALL_NAME}", "byo-warmup")  # opens the key's client once
    result = Compared([], [])
    for i in range(1, runs + 1):
        touch_free_memory()
        result.squall.append(own.run(f"{media}/{SOURCE_NAME}", f"byo-run-{i}"))
        touch_free_memory()
        result.bare.append(operator.run(f"{media}/{SOURCE_NAME}", f"op-run-{i}"))
        print(
            f"run {i}  own bucket {result.squall[-1].wall_s:6.3f} s   operator's {result.bare[-1].wall_s:6.3f} s"
        )
    verdict = "met" if result.ratio <= 1.05 else "MISSED"
    print(f"byo: own {result.squall_s:.3f} s  operator {result.bare_s:.3f} s  ratio {result.ratio:.3f} "
          f"(target <= 1.05: {verdict})")  # fmt: skip
    return result


if __name__ == "__main__":
    run_main(main)
