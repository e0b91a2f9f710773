"""Where a small job's fixed cost goes: ``python -m bench.small_jobs --profile-jobs N`` runs N
small jobs, one after another, through a real ``Worker`` inside the benchmark process under
cProfile (wall-clock timer), against a ``squall serve --workers 0`` on the same database, and
prints the time per job spent in each part of the worker's path (cumulative, so a row
includes the rows it calls).

It runs in a process of its own started with ``python -c`` (``run_profile``): the downloader
children are forked from a forkserver, which re-imports the parent's ``__main__`` module in
each child unless it is a package's ``__main__`` (as ``python -m squall worker`` is), so a
``python -m bench.small_jobs`` parent would make every child import the benchmark's own
dependencies and inflate the figures."""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from typing import Any

# (label, module file suffix, function name): the worker's path for one job, in order.
PARTS = [
    ("one job (claim + process)", "squall/worker/loop.py", "run_once"),
    ("  claim (queue.claim)", "squall/jobs/queue.py", "claim"),
    ("process (everything after the claim)", "squall/worker/loop.py", "process"),
    ("  key cookies read", "squall/worker/loop.py", "key_cookies"),
    ("  job storage read", "squall/worker/loop.py", "job_storage"),
    ("  step updates (3 transactions)", "squall/worker/run.py", "step"),
    ("  reservation resizes", "squall/worker/run.py", "need_bytes"),
    ("  download (child, all of it)", "squall/pipeline/download.py", "_download_once"),
    ("    child start (forkserver fork)", "multiprocessing/process.py", "start"),
    ("    waiting for the child's answer", "squall/pipeline/download.py", "_follow"),
    ("  probes (PyAV, input + output)", "squall/pipeline/probe.py", "probe"),
    ("  ffmpeg remux", "squall/pipeline/process.py", "run_ffmpeg"),
    ("  store", "squall/pipeline/run.py", "store_with_sidecars"),
    ("  completion (+ leftover check)", "squall/worker/outcome.py", "record_completion"),
    ("  work dir removal", "shutil.py", "rmtree"),
    ("all commits (Session.commit)", "sqlalchemy/orm/session.py", "commit"),
]


def run_profile(environ: dict[str, str], jobs: int, cwd: str) -> list[tuple[str, float, int]]:
    """``profile_worker`` in a ``python -c`` process with the server's environment."""
    code = (
        f"from bench.small_jobs_profile import profile_worker as p; import json; print(json.dumps(p({jobs})))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the profile failed:\n{done.stderr[-3000:]}")
    return [tuple(row) for row in json.loads(done.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def profile_worker(jobs: int) -> list[tuple[str, float, int]]:
    """Run the queued jobs through a Worker in this process; per-job ms of each part."""
    from squall.settings import Settings
    from squall.worker import Worker

    worker = Worker(Settings())
    worker.settings.work_dir.mkdir(parents=True, exist_ok=True)
    if not worker.run_once():  # the first job warms up (forkserver start), unprofiled
        raise RuntimeError("no job queued for the profile")
    profiler = cProfile.Profile(time.perf_counter)
    done = 0
    profiler.enable()
    while done < jobs and worker.run_once():
        done += 1
    profiler.disable()
    worker.stop()
    stats: Any = pstats.Stats(profiler).stats
    rows = []
    for label, suffix, name in PARTS:
        calls, total = 0, 0.0
        for (filename, _line, function), (_cc, ncalls, _tt, cumtime, _callers) in stats.items():
            if function == name and filename.endswith(suffix):
                calls += ncalls
                total += cumtime
        rows.append((label, total * 1000 / max(done, 1), calls))
    return rows
