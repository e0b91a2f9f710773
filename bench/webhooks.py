"""Webhook delivery: deliveries per second to a local receiver, and the delay from a job's
completion to its ``job_completed`` arriving, while 1,000 jobs complete.

    python -m bench.webhooks [--db sqlite|postgresql] [--jobs 1000] [--senders 4]

The receiver is a separate process (uvicorn, a bare ASGI app) that answers every POST with
204 and records the time each event arrived. Its own ceiling is measured first, in the same
run, by a plain client: ``--senders`` threads with a keep-alive ``httpx.Client`` each, posting
signed events of the same size as fast as the receiver answers. That is what the delivery
path could reach if it cost nothing but HTTP.

Squall's side is ``squall worker --concurrency 0`` (a process that only delivers webhooks,
with ``SQUALL_WEBHOOK_CONCURRENCY=--senders``) on a scratch database. Jobs with a
``webhook_url`` are completed by this process through the real ``claim`` and
``complete_job`` (each its own transaction, which writes the outbox row), as fast as the
database takes them, with a synthetic pipeline result: no media is processed, so only the
metering and delivery path is measured. Two phases:

- throughput: ``--jobs`` jobs complete first, then the worker starts and drains their
  events; deliveries/s = events / (last arrival - first arrival);
- delay: ``--jobs`` more jobs complete while the worker runs; delay = arrival at the
  receiver minus ``finished_at`` of the job (same machine, same clock).

Last line: ``RESULT webhooks per_s=… delay_p50_ms=… delay_p99_ms=… ratio=<per_s / ceiling>``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    DATABASES,
    BenchEnv,
    _stop,
    background,
    bench_env,
    free_port,
    percentile,
    run_main,
    squall_cli,
)
from squall.clock import now_ms
from squall.db import Database
from squall.jobs import queue
from squall.jobs import service as jobs
from squall.jobs.options import JobOptions
from squall.keys.secrets import new_webhook_secret as new_secret
from squall.keys.service import AuthenticatedKey
from squall.pipeline.spec import PipelineResult
from squall.subscriptions import wire
from squall.webhooks.signing import signature_header

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --- the receiver (its own process) -----------------------------------------------------------


def receiver_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    arrivals: list[tuple[str, float]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            arrivals.append((json.loads(body).get("job_id", ""), time.time() * 1000))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = json.dumps(arrivals).encode()
        if scope["path"] == "/reset":
            arrivals.clear()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    return app


def serve_receiver(port: int) -> None:
    import uvicorn

    uvicorn.run(receiver_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def receiver_process() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.webhooks", "--serve-receiver", str(port)]
    base = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as logs,
        background(command, f"{base}/arrivals", "receiver", Path(logs) / "r.log"),
    ):
        yield base


def arrivals(base: str, *, reset: bool = False) -> list[tuple[str, float]]:
    found = httpx.get(f"{base}/{'reset' if reset else 'arrivals'}", timeout=30).json()
    return [(job_id, at) for job_id, at in found]


# --- the ceiling: a plain client --------------------------------------------------------------


def sample_payload() -> str:
    return json.dumps({
        "type": "job_completed", "job_id": "00000000-0000-0000-0000-000000000000", "url": "http://127.0.0.1/v.mp4",
        "batch_id": None, "status": "completed", "key": "bench/episode.mp4", "folder": "bench", "title": "v",
        "description": None, "release_date": None, "subtitle_key": None, "thumbnail_key": None,
        "file_size": 1048576, "download_url": "http://127.0.0.1:8000/files/x/episode.mp4?expires=1&sig=" + "0" * 64,
    }, separators=(",", ":"))  # fmt: skip


def ceiling(base: str, total: int, senders: int) -> float:
    """Signed POSTs per second that ``senders`` keep-alive clients get through."""
    secret, body = new_secret(), sample_payload()
    per_sender = total // senders

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            for n in range(per_sender):
                msg_id, stamp = f"msg_{n}", int(time.time())
                headers = {"content-type": "application/json", "webhook-id": msg_id,
                           "webhook-timestamp": str(stamp),
                           "webhook-signature": signature_header([secret], msg_id, stamp, body)}  # fmt: skip
                client.post(f"{base}/", content=body, headers=headers).raise_for_status()

    threads = [threading.Thread(target=run) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_sender * senders / (time.perf_counter() - started)


# --- Squall ------------------------------------------------------------------------------------


def queue_jobs(db: Database, key: AuthenticatedKey, hook: str, count: int) -> None:
    options = [JobOptions(url=f"http://127.0.0.1:9/episode-{n}.mp4", webhook_url=hook, folder="bench")
               for n in range(count)]  # fmt: skip
    with db.write() as session:
        jobs.create_jobs(session, key, options, now=now_ms(), admission=jobs.Admission(0, 1))


def complete_all(db: Database, count: int) -> float:
    """Claim and complete every queued job, one transaction each; returns completions/s."""
    started = time.perf_counter()
    for n in range(count):
        with db.write() as session:
            claimed = queue.claim(session, worker_id="bench", now=now_ms(), lease_ms=60_000)
        assert claimed is not None, "the queue ran dry"
        done = PipelineResult(output_key=f"bench/episode-{n}.mp4", file_size=1048576, downloaded_bytes=1048576,
                              duration_seconds=60.0, width=1280, height=720, title=f"episode {n}")  # fmt: skip
        with db.write() as session:
            link = f"http://127.0.0.1:8000/files/{claimed.id}/episode-{n}.mp4?expires=1&sig=" + "0" * 64
            assert jobs.complete_job(session, claimed, done, now=now_ms(), download_url=link)
    return count / (time.perf_counter() - started)


def finished_at(db: Database) -> dict[str, int]:
    from sqlalchemy import select

    from squall.jobs.models import Job

    with db.read() as session:
        rows = session.execute(select(Job.id, Job.finished_at)).all()
        return {job_id: at for job_id, at in rows if at is not None}


@contextmanager
def webhook_worker(env: BenchEnv, senders: int) -> Iterator[subprocess.Popen[bytes]]:
    """``squall worker --concurrency 0``: a process that only delivers webhooks."""
    with (env.data_dir / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "squall", "worker", "--concurrency", "0"],
            env=env.environ(SQUALL_WEBHOOK_CONCURRENCY=str(senders), SQUALL_POLL_SECONDS="0.05"),
            cwd=env.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield worker
    finally:
        _stop(worker)


def wait_for_arrivals(base: str, count: int, worker: subprocess.Popen[bytes]) -> list[tuple[str, float]]:
    deadline = time.monotonic() + 600
    while len(found := arrivals(base)) < count:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"only {len(found)} of {count} deliveries arrived; see the worker's log")
        time.sleep(0.1)
    if len({job_id for job_id, _ in found}) != count:
        raise RuntimeError("a job was announced twice or not at all")
    return found


@dataclass
class Measured:
    per_s: float = 0.0  # deliveries/s draining a backlog
    delays: list[float] = field(default_factory=list)  # ms, while jobs complete
    completions: float = 0.0  # jobs completed/s meanwhile


def measure_squall(env: BenchEnv, base: str, count: int, senders: int) -> Measured:
    squall_cli(env, "db", "upgrade")
    created = json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))
    db = wire(Database(env.database_url))
    key = AuthenticatedKey(id=created["id"], client_name="bench", key_type="unlimited", max_resolution=None,
                           max_duration_seconds=None, max_filesize_bytes=None, stripe_subscription_id=None)  # fmt: skip
    measured = Measured()
    try:
        # Throughput: the events of `count` completed jobs wait in the outbox; time the drain.
        queue_jobs(db, key, f"{base}/", count)
        complete_all(db, count)
        arrivals(base, reset=True)
        with webhook_worker(env, senders) as worker:
            times = sorted(at for _, at in wait_for_arrivals(base, count, worker))
        measured.per_s = (len(times) - 1) / ((times[-1] - times[0]) / 1000)

        # Delay: `count` more jobs complete while the senders run.
        queue_jobs(db, key, f"{base}/", count)
        arrivals(base, reset=True)
        with webhook_worker(env, senders) as worker:
            time.sleep(2)  # up and polling before the first job completes
            measured.completions = complete_all(db, count)
            found = wait_for_arrivals(base, count, worker)
        ended = finished_at(db)
        measured.delays = sorted(at - ended[job_id] for job_id, at in found)
    finally:
        db.dispose()
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="sqlite", choices=DATABASES)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return 0
    with receiver_process() as base:
        ceiling(base, 200, args.senders)  # warm-up
        plain = ceiling(base, args.jobs, args.senders)
        print(f"receiver ceiling (plain client, {args.senders} threads): {plain:,.0f} POST/s")
        with bench_env(args.db) as env:
            measured = measure_squall(env, base, args.jobs, args.senders)
    per_s, delays = measured.per_s, measured.delays
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    print(f"backlog of {args.jobs} events delivered at {per_s:,.0f}/s by {args.senders} senders ({args.db})")
    print(f"while {args.jobs} jobs completed at {measured.completions:,.0f}/s: delay from completion to "
          f"delivery p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms")  # fmt: skip
    print(f"RESULT webhooks per_s={per_s:.1f} delay_p50_ms={p50:.1f} delay_p99_ms={p99:.1f} "
          f"ratio={per_s / plain:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
