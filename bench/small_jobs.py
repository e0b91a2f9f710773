"""Small jobs: the fixed cost of a job. ``--jobs`` (200) 3-second MP3 episodes through Squall
with 2 workers, against the bare chain (yt-dlp + ``ffmpeg -c copy`` + copy into a folder) run
on the same files with the same parallelism (2 processes) in the same run. Target:
squall jobs/s / bare jobs/s >= 0.8.

    python -m bench.small_jobs [--jobs 200] [--db sqlite|postgresql] [--workers 2]

Setup: FFmpeg (``ffmpeg_path()``) generates one 3 s MP3 (lavfi sine, 128 kb/s, ~48 KB),
hard-linked under ``--jobs`` names so that every job fetches its own URL, served by
``python -m http.server`` on a free loopback port. Squall is ``squall serve --workers N``
(each worker process runs one job at a time) with its default settings on a scratch
database; jobs are submitted with ``POST /jobs/bulk`` (100 a request, ``format: mp3``) and
no webhook. Squall's time runs from the first submission to the last job's ``finished_at``.

The bare chain runs in N processes of a ``multiprocessing`` pool (spawn), each with yt-dlp
already imported and warmed up on one file before the clock starts, so it pays no
interpreter start and no import: a strict baseline. Squall is warmed up the same way (N jobs
before the clock, so both workers' downloader forkservers are up). The two sides run one
after the other, squall first, in the same run.

Afterwards the per-job phases of Squall's jobs (``queue_wait_ms``, ``*_duration_ms``, and the
rest of ``started_at``..``finished_at``) and of the bare jobs are printed as medians.

Last line: ``RESULT small_jobs squall_jobs_per_s=… bare_jobs_per_s=… ratio=<squall / bare>``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import BenchEnv, background, bare_ytdlp_options, bench_env, free_port, run_main, squall_cli
from bench.pipeline import ENDED, _children, _cmdline, squall_serve
from bench.small_jobs_profile import run_profile
from squall.pipeline.binaries import ffmpeg_path

BULK_SIZE = 100  # POST /jobs/bulk's limit
TIMEOUT_S = 900.0
POLL_EVERY = 0.25


def generate_episode(ffmpeg: str, target: Path, seconds: int = 3) -> None:
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    command += ["-c:a", "libmp3lame", "-b:a", "128k", str(target)]
    subprocess.run(command, check=True)


# --- the bare chain, in a pool of warm processes ------------------------------------------------

_BARE: dict[str, Any] = {}


def _bare_init(ffmpeg: str, work: str, store: str, warm_url: str) -> None:
    import yt_dlp

    _BARE.update(ffmpeg=ffmpeg, work=Path(work), store=Path(store), yt_dlp=yt_dlp)
    _bare_job(warm_url, f"warm-{os.getpid()}")


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (FFmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _kind(pid: int, root: int) -> str:
    argv = " ".join(_cmdline(pid))
    if "forkserver" in argv:
        return "downloader"  # the forkserver and, once it has reaped them, its yt-dlp children
    if "squall worker" in argv:
        return "worker"  # its FFmpeg runs are counted apart (tree_cpu_s)
    return "api" if pid == root else "other"


def tree_cpu_s(root: int) -> dict[str, float]:
    """CPU seconds of a process tree by kind of process: each live process's own and its
    ended children's (a worker's ended children, its FFmpeg runs, apart)."""
    totals: dict[str, float] = {}
    pending = [root]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        kind = _kind(pid, root)
        own, reaped = [sum(int(v) for v in pair) / tick for pair in (fields[11:13], fields[13:15])]
        if kind == "worker":  # what a worker reaped is the FFmpeg runs it waited for
            totals["ffmpeg"] = totals.get("ffmpeg", 0.0) + reaped
            reaped = 0.0
        totals[kind] = totals.get(kind, 0.0) + own + reaped
        pending += _children(pid)
    return totals


def _bare_job(url: str, name: str) -> dict[str, float]:
    cpu = _cpu_s()
    ffmpeg, yt_dlp = _BARE["ffmpeg"], _BARE["yt_dlp"]
    workdir = _BARE["work"] / name
    options = bare_ytdlp_options(workdir, ffmpeg, "ba/b")
    output = workdir / "output.mp3"
    try:
        started = time.perf_counter()
        with yt_dlp.YoutubeDL(options) as ydl:
            if ydl.download([url]) != 0:
                raise RuntimeError(f"yt-dlp could not download {url}")
        downloaded = time.perf_counter()
        (source,) = [p for p in workdir.iterdir() if p.name.startswith("source.")]
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
        subprocess.run([*command, "-map", "0:a:0", "-c", "copy", "-f", "mp3", str(output)], check=True)
        muxed = time.perf_counter()
        shutil.copyfile(output, _BARE["store"] / f"{name}.mp3")
        stored = time.perf_counter()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "download": (downloaded - started) * 1000,
        "mux": (muxed - downloaded) * 1000,
        "store": (stored - muxed) * 1000,
        "total": (stored - started) * 1000,
        "cpu": (_cpu_s() - cpu) * 1000,
    }


def _bare_star(args: tuple[str, str]) -> dict[str, float]:
    return _bare_job(*args)


def run_bare(
    ffmpeg: str, urls: list[str], parallel: int, scratch: Path, warm_url: str
) -> tuple[float, list[dict[str, float]]]:
    if not urls:
        return 0.0, []
    work, store = scratch / "work", scratch / "store"
    work.mkdir(parents=True)
    store.mkdir()
    ctx = multiprocessing.get_context("spawn")
    init = (ffmpeg, str(work), str(store), warm_url)
    with ctx.Pool(parallel, initializer=_bare_init, initargs=init) as pool:
        pool.map(time.sleep, [0.2] * parallel, chunksize=1)  # every process has run its warm-up
        started = time.perf_counter()
        phases = pool.map(_bare_star, [(url, f"bare-{i}") for i, url in enumerate(urls)], chunksize=1)
        wall = time.perf_counter() - started
    return wall, phases


# --- Squall ------------------------------------------------------------------------------------


def submit(client: httpx.Client, urls: list[str], prefix: str) -> list[str]:
    """Bulk submissions of up to 100; returns the batch ids."""
    batches = []
    for start in range(0, len(urls), BULK_SIZE):
        chunk = urls[start : start + BULK_SIZE]
        items = [{"url": url, "filename": f"{prefix}-{start + i}"} for i, url in enumerate(chunk)]
        answer = client.post("/jobs/bulk", json={"jobs": items, "format": "mp3"})
        answer.raise_for_status()
        batches.append(str(answer.json()["batch_id"]))
    return batches


def wait_batches(client: httpx.Client, batches: list[str]) -> list[str]:
    """Until every batch has ended; returns its job ids."""
    deadline = time.monotonic() + TIMEOUT_S
    pending, job_ids = list(batches), []
    while pending and time.monotonic() < deadline:
        body = client.get(f"/batch/{pending[0]}").json()
        if body["completed_episodes"] + body["failed_episodes"] >= body["total_episodes"]:
            if body["failed_episodes"]:
                errors = {
                    client.get(f"/jobs/{job_id}").json().get("error") for job_id in body["episode_jobs"]
                }
                raise RuntimeError(f"batch {pending[0]}: {body['failed_episodes']} jobs failed: {errors}")
            job_ids += body["episode_jobs"]
            pending.pop(0)
            continue
        time.sleep(POLL_EVERY)
    if pending:
        raise RuntimeError(f"jobs not done after {TIMEOUT_S:g} s")
    return job_ids


def job_phases(job: dict[str, Any]) -> dict[str, float]:
    run = float(job["finished_at"] - job["started_at"])
    phases = {
        "queue": float(job.get("queue_wait_ms") or 0),
        "download": float(job.get("download_duration_ms") or 0),
        "mux": float(job.get("mux_duration_ms") or 0),
        "store": float(job.get("upload_duration_ms") or 0),
    }
    phases["other"] = run - phases["download"] - phases["mux"] - phases["store"]
    phases["total"] = run
    return phases


def run_squall(
    env: BenchEnv, urls: list[str], workers: int, warm_urls: list[str]
) -> tuple[float, list[dict[str, float]]]:
    squall_cli(env, "db", "upgrade")
    key = str(json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))["api_key"])
    with squall_serve(env, workers=workers, extra={}) as (base, pid):
        client = httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60.0)
        try:
            wait_batches(client, submit(client, warm_urls, "warm"))
            cpu = tree_cpu_s(pid)
            started_ms = time.time() * 1000
            job_ids = wait_batches(client, submit(client, urls, "job"))
            after = tree_cpu_s(pid)
            cpu_ms = {kind: (after[kind] - cpu.get(kind, 0.0)) * 1000 / len(urls) for kind in after}
            jobs = [client.get(f"/jobs/{job_id}").json() for job_id in job_ids]
        finally:
            client.close()
    bad = [job for job in jobs if job.get("status") not in ENDED or job["status"] != "Completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} jobs did not complete, e.g. {bad[0]}")
    wall = (max(job["finished_at"] for job in jobs) - started_ms) / 1000
    phases = [job_phases(job) for job in jobs]
    for each in phases:  # the tree's CPU (API, workers, children, FFmpeg) per job, on average
        each["cpu"] = sum(cpu_ms.values())
        each.update({f"cpu_{kind}": ms for kind, ms in cpu_ms.items()})
    return wall, phases


def profile(env: BenchEnv, urls: list[str]) -> list[tuple[str, float, int]]:
    """The fixed-cost profile: jobs queued through an API-only server, run by a worker in this
    process (``small_jobs_profile``)."""
    squall_cli(env, "db", "upgrade")
    key = str(json.loads(squall_cli(env, "keys", "create", "--name", "profile", "--json"))["api_key"])
    with squall_serve(env, workers=0, extra={}) as (base, _pid):
        client = httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60.0)
        try:
            batches = submit(client, urls, "profile")
            parts = run_profile(env.environ(SQUALL_PUBLIC_URL=base), len(urls) - 1, str(env.data_dir))
            wait_batches(client, batches)
        finally:
            client.close()
    return parts


def medians(phases: list[dict[str, float]], key: str) -> str:
    values = [p[key] for p in phases if key in p]
    return f"{statistics.median(values):8.0f}" if values else "       -"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="episodes on each side")
    parser.add_argument("--workers", type=int, default=2, help="Squall workers, and bare processes")
    parser.add_argument("--db", default="sqlite", help="sqlite or postgresql")
    parser.add_argument(
        "--profile-jobs", type=int, default=30, help="jobs for the fixed-cost profile (0 skips)"
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.workers < 1:
        raise SystemExit("--jobs and --workers must be at least 1")
    ffmpeg = ffmpeg_path()
    load = os.getloadavg()
    print(f"ffmpeg: {ffmpeg}; {args.jobs} jobs, {args.workers} workers, {args.db}; load {load[0]:.2f}")

    parts: list[tuple[str, float, int]] = []
    scratch = Path(tempfile.mkdtemp(prefix="squall-bench-small-"))
    try:
        media_dir = scratch / "media"
        media_dir.mkdir()
        episode = media_dir / "episode.mp3"
        generate_episode(ffmpeg, episode)
        names = [f"ep-{i:04d}.mp3" for i in range(args.jobs)] + [
            f"warm-{i}.mp3" for i in range(2 * args.workers)
        ]
        names += [f"profile-{i:04d}.mp3" for i in range(args.profile_jobs + 1)]
        for name in names:
            os.link(episode, media_dir / name)
        print(f"episode: {episode.stat().st_size} bytes, 3 s MP3")

        port = free_port()
        media = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port),
            "--directory",
            str(media_dir),
        ]
        urls = [f"{media}/ep-{i:04d}.mp3" for i in range(args.jobs)]
        warm = [f"{media}/warm-{i}.mp3" for i in range(2 * args.workers)]
        with background(command, f"{media}/episode.mp3", "media server", scratch / "media.log"):
            half = args.jobs // 2  # the bare chain runs half before and half after squall
            first_s, bare_phases = run_bare(ffmpeg, urls[:half], args.workers, scratch / "bare-1", warm[-1])
            with bench_env(args.db) as env:
                squall_s, squall_phases = run_squall(env, urls, args.workers, warm[: args.workers])
            print(f"squall: {args.jobs} jobs in {squall_s:.2f} s")
            second_s, more = run_bare(ffmpeg, urls[half:], args.workers, scratch / "bare-2", warm[-1])
            bare_s, bare_phases = first_s + second_s, bare_phases + more
            print(
                f"bare:   {args.jobs} jobs in {bare_s:.2f} s ({first_s:.2f} s before squall, {second_s:.2f} s after)"
            )
            if args.profile_jobs:
                with bench_env(args.db) as env:
                    parts = profile(
                        env, [f"{media}/profile-{i:04d}.mp3" for i in range(args.profile_jobs + 1)]
                    )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("per job, medians in ms:".ljust(36) + "  squall     bare")
    for title, key in [("queue wait", "queue"), ("download (yt-dlp)", "download"), ("mux (ffmpeg -c copy)", "mux"),
                       ("store", "store"), ("other (claim, steps, commits)", "other"), ("claim..finished", "total"),
                       ("CPU per job (all processes)", "cpu"), ("  API process", "cpu_api"),
                       ("  worker processes", "cpu_worker"), ("  FFmpeg (the workers' runs)", "cpu_ffmpeg"),
                       ("  downloader children", "cpu_downloader")]:  # fmt: skip
        print(f"  {title:<32} {medians(squall_phases, key)} {medians(bare_phases, key)}")
    if args.profile_jobs:
        print(
            f"where a job's time goes (in-process worker under cProfile, {args.profile_jobs} jobs in a row):"
        )
        for label, ms, calls in parts:
            print(f"  {label:<40} {ms:8.1f} ms/job  ({calls} calls)")
    squall_rate, bare_rate = args.jobs / squall_s, args.jobs / bare_s
    ratio = squall_rate / bare_rate
    verdict = "met" if ratio >= 0.8 else "MISSED"
    load_end = os.getloadavg()
    print(f"ratio {ratio:.3f} (target >= 0.8: {verdict}); load at end {load_end[0]:.2f}")
    print(
        f"RESULT small_jobs squall_jobs_per_s={squall_rate:.2f} bare_jobs_per_s={bare_rate:.2f} ratio={ratio:.3f}"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
