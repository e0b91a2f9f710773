"""Delivery throughput: full-file and Range downloads of a 100 MB stored file from Squall's
``/files/...`` (signed, metered, answered from the delivery cache in front of an S3 bucket),
against nginx serving the same bytes from disk in the same run.

    python -m bench.delivery [--size-mb 100] [--downloads 12] [--clients 2] [--ranges 1000]

nginx is the baseline: install it first with ``apt-get install nginx-light`` (or nginx).
Squall is ``squall serve --workers 0 --api-processes 2`` on SQLite with
``SQUALL_STORAGE=s3`` against ``moto_server`` on loopback; nginx runs 2 worker processes
with sendfile. The object is a completed job's output, put in the bucket; one unmeasured
GET fills Squall's delivery cache, so every measured request is a cache hit (the case the
target is set for), and each one is still metered (a ledger write per request).

Full downloads: ``--clients`` threads with a keep-alive client each, ``--downloads`` in
all, bodies read and discarded; MB/s = bytes / wall time. Range requests: ``--ranges``
sequential GETs of 256 KB at random offsets; p50/p99 latency.

Objects beyond the cache: a second server with ``SQUALL_DELIVERY_CACHE_MB=--cache-mb``
(64) serves a ``--big-mb`` object (256; the issue's case is ``--big-mb 1024``), which the
cache will not hold, so every request is a miss. ``--big-ranges`` 1 MB ranges at random
offsets through Squall, each beside a direct ranged GetObject of the same bytes from the
bucket (boto3, keep-alive), alternating; medians: ``range_miss_ms``, ``direct_range_ms``.
Last line: ``RESULT delivery squall_mb_s=… nginx_mb_s=… range_p99_ms=… ratio=<squall / nginx>
range_miss_ms=… direct_range_ms=… miss_ratio=<range_miss / direct_range>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench._common import (
    BenchEnv,
    _stop,
    _wait_ready,
    background,
    bench_env,
    free_port,
    percentile,
    run_main,
    squall_cli,
)
from squall.clock import now_ms
from squall.db import Database
from squall.db.base import new_id
from squall.models import Job  # every model, so the foreign keys resolve
from squall.storage.s3 import S3Storage
from squall.storage.signing import signed_url
from squall.subscriptions import wire

BUCKET = "squall-bench"
RANGE_BYTES = 256 * 1024
MB = 1024 * 1024


def find_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("nginx is the baseline of this benchmark: apt-get install nginx-light (or nginx)")


@contextmanager
def nginx(root: Path) -> Iterator[str]:
    port = free_port()
    conf = root.parent / "nginx.conf"
    conf.write_text(f"""
worker_processes 2; daemon off; pid {root.parent}/nginx.pid; error_log {root.parent}/nginx.err;
events {{ worker_connections 256; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path {root.parent}/nginx-tmp; proxy_temp_path {root.parent}/nginx-tmp;
  fastcgi_temp_path {root.parent}/nginx-tmp; uwsgi_temp_path {root.parent}/nginx-tmp; scgi_temp_path {root.parent}/nginx-tmp;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    for path in (root.parent, root):
        path.chmod(0o755)  # nginx's workers drop root for nobody
    command = [find_nginx(), "-c", str(conf), "-e", str(root.parent / "nginx.err")]
    base = f"http://127.0.0.1:{port}"
    with background(command, base + "/", "nginx", root.parent / "nginx.log"):
        yield base


@contextmanager
def moto() -> Iterator[str]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    base = f"http://127.0.0.1:{port}"
    with background(command, base, "moto_server", Path(tempfile.gettempdir()) / f"moto-{port}.log"):
        yield base


@contextmanager
def squall_s3_server(env: BenchEnv, s3: dict[str, str]) -> Iterator[str]:
    port = free_port()
    log_path = env.data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "squall", "serve", "--workers", "0", "--api-processes", "2",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env.environ(**s3), cwd=env.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, 60, log_path)
        yield base
    finally:
        _stop(proc)


def stored_job(
    env: BenchEnv, storage: S3Storage, source: Path, key: str = "bench/movie.mp4"
) -> tuple[str, str]:
    """A completed job whose output is ``source``, put in the bucket as ``key``: (job id, API key)."""
    created = json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))
    storage.put(source, key, overwrite=True)
    job_id, now = new_id(), now_ms()
    db = wire(Database(env.database_url))
    with db.write() as session:
        session.add(Job(id=job_id, key_id=created["id"], url="http://example.com/movie.mp4", options={},
                        priority=5, status="Completed", step="Finished", attempt=1, max_attempts=1,
                        run_after=now, reserved_bytes=0, created_at=now, finished_at=now,
                        output_key=key, file_size=source.stat().st_size,
                        stored_bytes=source.stat().st_size))  # fmt: skip
    db.dispose()
    return job_id, created["api_key"]


def full_downloads(url: str, downloads: int, clients: int) -> float:
    """MB/s over ``downloads`` whole-file GETs by ``clients`` threads."""
    counts = [downloads // clients + (i < downloads % clients) for i in range(clients)]
    received = [0] * clients

    def run(i: int) -> None:
        with httpx.Client(timeout=120) as client:
            for _ in range(counts[i]):
                with client.stream("GET", url) as response:
                    response.raise_for_status()
                    for chunk in response.iter_raw(1024 * 1024):
                        received[i] += len(chunk)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(received) / MB / (time.perf_counter() - started)


def range_latencies(url: str, size: int, count: int, rng: random.Random) -> list[float]:
    samples = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            start = rng.randrange(0, size - RANGE_BYTES)
            began = time.perf_counter()
            response = client.get(url, headers={"Range": f"bytes={start}-{start + RANGE_BYTES - 1}"})
            samples.append((time.perf_counter() - began) * 1000)
            if response.status_code != 206 or len(response.content) != RANGE_BYTES:
                raise RuntimeError(
                    f"range request answered {response.status_code}, {len(response.content)} bytes"
                )
    return sorted(samples)


def range_misses(
    url: str, storage: S3Storage, key: str, size: int, count: int
) -> tuple[list[float], list[float]]:
    """Sorted latencies (ms) of ``count`` 1 MB ranges through Squall and straight from the
    bucket, the same offsets for both, alternating so both see the same load."""
    rng, squall, direct = random.Random(2), [], []
    with httpx.Client(timeout=300) as client:
        for i in range(count + 1):  # the first pair warms connections: not measured
            start = rng.randrange(0, size - MB)
            began = time.perf_counter()
            served = client.get(url, headers={"Range": f"bytes={start}-{start + MB - 1}"})
            through_squall = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            body = storage.client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{start + MB - 1}")
            read = body["Body"].read()
            straight = (time.perf_counter() - began) * 1000
            if served.status_code != 206 or served.content != read or len(read) != MB:
                raise RuntimeError(
                    f"range through Squall answered {served.status_code}, {len(served.content)} bytes"
                )
            if i:
                squall.append(through_squall)
                direct.append(straight)
    return sorted(squall), sorted(direct)


def write_random(path: Path, size_mb: int) -> None:
    with path.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(MB))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--downloads", type=int, default=12)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--ranges", type=int, default=1000)
    parser.add_argument(
        "--big-mb", type=int, default=256, help="the object beyond the cache (the issue: 1024)"
    )
    parser.add_argument("--cache-mb", type=int, default=64, help="the delivery cache for that object")
    parser.add_argument(
        "--big-ranges", type=int, default=20, help="1 MB ranges of it, each beside a direct GET"
    )
    args = parser.parse_args()
    if args.big_mb <= args.cache_mb:
        parser.error("--big-mb must exceed --cache-mb (the case is an object the cache will not hold)")
    find_nginx()
    scratch = Path(tempfile.mkdtemp(prefix="squall-delivery-"))
    try:
        root = scratch / "www"
        root.mkdir()
        source = root / "movie.mp4"
        write_random(source, args.size_mb)
        source.chmod(0o644)
        size = source.stat().st_size
        with moto() as endpoint, bench_env("sqlite") as env:
            s3 = {"SQUALL_STORAGE": "s3", "SQUALL_S3_BUCKET": BUCKET, "SQUALL_S3_ENDPOINT_URL": endpoint,
                  "SQUALL_S3_REGION": "us-east-1", "SQUALL_S3_ACCESS_KEY_ID": "bench",
                  "SQUALL_S3_SECRET_ACCESS_KEY": "bench", "SQUALL_S3_ADDRESSING_STYLE": "path",
                  "SQUALL_DELIVERY_CACHE_MB": str(4 * args.size_mb)}  # fmt: skip
            storage = S3Storage(bucket=BUCKET, endpoint_url=endpoint, region="us-east-1", access_key_id="bench",
                                secret_access_key="bench", addressing_style="path")  # fmt: skip
            storage.client.create_bucket(Bucket=BUCKET)
            squall_cli(env, "db", "upgrade")
            job_id, api_key = stored_job(env, storage, source)
            link = signed_url("", job_id, "movie.mp4", secret=env.secret_key, now_s=int(time.time()))
            with squall_s3_server(env, s3) as base, nginx(root) as nginx_base:
                squall_url, nginx_url = base + link, nginx_base + "/movie.mp4"
                warm = httpx.get(squall_url, timeout=120)  # fills the delivery cache: the one miss
                if warm.content != source.read_bytes():
                    raise RuntimeError("Squall served different bytes")
                full_downloads(nginx_url, 2, 1)  # page cache warm for both
                results = {}
                for name, url in (("nginx", nginx_url), ("squall", squall_url), ("nginx", nginx_url),
                                  ("squall", squall_url)):  # fmt: skip
                    results.setdefault(name, []).append(full_downloads(url, args.downloads, args.clients))
                rng = random.Random(1)
                ranges = {name: range_latencies(url, size, args.ranges, rng)
                          for name, url in (("squall", squall_url), ("nginx", nginx_url))}  # fmt: skip
                day = time.strftime("%Y-%m-%d", time.gmtime())
                (metered,) = httpx.get(f"{base}/usage/network", params={"startDate": day, "endDate": day},
                                       headers={"x-api-key": api_key}).json()  # fmt: skip
                print(f"metered by Squall: {metered['requests']} requests, {metered['bytesDownloaded'] / MB:,.0f} MB, "
                      f"cache hit rate {metered['cacheHitRate']}%")  # fmt: skip
            big = scratch / "big.bin"
            write_random(big, args.big_mb)
            big_job, big_key = stored_job(env, storage, big, "bench/big.bin")
            big.unlink()  # in the bucket now; the scratch disk need not hold it twice
            big_link = signed_url("", big_job, "big.bin", secret=env.secret_key, now_s=int(time.time()))
            small_cache = {**s3, "SQUALL_DELIVERY_CACHE_MB": str(args.cache_mb)}
            with squall_s3_server(env, small_cache) as base:
                misses, direct = range_misses(base + big_link, storage, "bench/big.bin", args.big_mb * MB,
                                              args.big_ranges)  # fmt: skip
                (metered,) = httpx.get(f"{base}/usage/network", params={"startDate": day, "endDate": day},
                                       headers={"x-api-key": big_key}).json()  # fmt: skip
            expected = (args.big_ranges + 1, (args.big_ranges + 1) * MB, 0)
            if (metered["requests"], metered["bytesDownloaded"], metered["cacheHitRate"]) != expected:
                raise RuntimeError(f"metering of the ranges beyond the cache: {metered}, expected {expected}")
            print(f"metered beyond the cache: {metered['requests']} requests, {metered['bytesDownloaded']:,} bytes "
                  f"(exactly the ranges), cache hit rate {metered['cacheHitRate']}%")  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    squall_mb_s, nginx_mb_s = max(results["squall"]), max(results["nginx"])
    print(
        f"full downloads of {args.size_mb} MB, {args.clients} clients, best of 2 rounds of {args.downloads}:"
    )
    print(f"  squall {squall_mb_s:8.1f} MB/s   (rounds: {', '.join(f'{v:.1f}' for v in results['squall'])})")
    print(f"  nginx  {nginx_mb_s:8.1f} MB/s   (rounds: {', '.join(f'{v:.1f}' for v in results['nginx'])})")
    for name, samples in ranges.items():
        print(
            f"  {name:6} 256 KB ranges: p50 {percentile(samples, 50):.2f} ms, p99 {percentile(samples, 99):.2f} ms"
        )
    range_miss_ms, direct_range_ms = percentile(misses, 50), percentile(direct, 50)
    print(
        f"1 MB ranges of a {args.big_mb} MB object beyond a {args.cache_mb} MB cache, {args.big_ranges} each:"
    )
    print(f"  squall (miss) p50 {range_miss_ms:.2f} ms, p99 {percentile(misses, 99):.2f} ms")
    print(f"  direct GET    p50 {direct_range_ms:.2f} ms, p99 {percentile(direct, 99):.2f} ms")
    print(f"  Squall's own part of a miss (p50 difference): {range_miss_ms - direct_range_ms:.2f} ms")
    print(f"RESULT delivery squall_mb_s={squall_mb_s:.1f} nginx_mb_s={nginx_mb_s:.1f} "
          f"range_p99_ms={percentile(ranges['squall'], 99):.2f} ratio={squall_mb_s / nginx_mb_s:.3f} "
          f"range_miss_ms={range_miss_ms:.2f} direct_range_ms={direct_range_ms:.2f} "
          f"miss_ratio={range_miss_ms / direct_range_ms:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
