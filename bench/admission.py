"""Admission throughput: ``POST /jobs`` at N concurrent keep-alive clients against a real
``squall serve --workers 0`` process, next to ``GET /healthz`` (the framework's ceiling)
measured in the same run with the same clients.

    python -m bench.admission [--db sqlite|postgresql] [--seconds 10] [--clients 32]

Last line: ``RESULT admission db=… per_s=… p50_ms=… p99_ms=… ratio=<admissions/s ÷ healthz/s>``.
At the end ``GET /usage`` must report exactly as many jobs as 200 responses were counted.

Load comes from ``wrk`` when installed, else from an asyncio client in its own process. Both
stop sending at the deadline and wait for the answers in flight, so every admission the
server made is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import cast

import httpx

from bench._common import DATABASES, bench_env, percentile, run_main, squall_cli, squall_server

JOB_BODY = json.dumps({"url": "http://127.0.0.1:9/video.mp4"})
MAX_DRAIN_SECONDS = 120  # wrk is stopped once every answer is in, at the latest this long after


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True)
class Measured:
    statuses: dict[int, int]
    seconds: float  # from the first request sent to the last answer received
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def line(self, label: str) -> str:
        others = {s: n for s, n in self.statuses.items() if s != 200}
        extra = f"  other statuses {others}" if others else ""
        return (
            f"{label:<12} {self.ok:>7} x 200 in {self.seconds:5.2f} s  per_s={self.per_s:8.1f}"
            f"  p50={self.p50_ms:7.2f} ms  p99={self.p99_ms:7.2f} ms{extra}"
        )


# --- wrk ------------------------------------------------------------------------------------

WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s

local threads = {}
function setup(thread) table.insert(threads, thread) end

started, stop_at, last_answer, statuses, parked, connections = 0, 0, 0, {}, 0, 0
function init(args)
  started = now()
  stop_at = started + tonumber(args[1])
  connections = tonumber(args[2])
end
-- After the deadline a connection sends nothing more. Once every connection has had its
-- last answer this says so, and the benchmark stops wrk with no request in flight.
function delay()
  if now() < stop_at then return 0 end
  parked = parked + 1
  if parked == connections then
    io.write("DRAINED\\n")
    io.flush()
  end
  return 3600000
end
function response(status, headers, body)
  last_answer = now()
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local first, last, counts = math.huge, 0, {}
  for _, t in ipairs(threads) do
    first = math.min(first, t:get("started"))
    last = math.max(last, t:get("last_answer"))
    for status, n in pairs(t:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(counts) do table.insert(parts, status .. ":" .. n) end
  local e = summary.errors
  io.write(string.format(
    "BENCH seconds=%%.6f p50_us=%%d p99_us=%%d statuses=%%s errors=connect:%%d,read:%%d,write:%%d,timeout:%%d\\n",
    last - first, latency:percentile(50), latency:percentile(99), table.concat(parts, ","),
    e.connect, e.read, e.write, e.timeout))
end
"""


def _lua(text: str) -> str:
    if not text.isascii():
        raise ValueError("wrk script values must be ASCII")
    return json.dumps(text)  # a JSON string of ASCII text is also a valid Lua string


def _run_until_drained(command: list[str]) -> tuple[str, str, int]:
    """Run wrk, and stop it (SIGINT: it prints its summary and exits) when it says DRAINED."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "DRAINED":
                proc.send_signal(signal.SIGINT)
        return "".join(lines), proc.stderr.read(), proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_wrk(wrk: str, base: str, target: Target, clients: int, seconds: float) -> Measured:
    headers = "\n".join(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in target.headers.items())
    script = WRK_SCRIPT % {
        "method": _lua(target.method),
        "body": _lua(target.body) if target.body else "nil",
        "headers": headers,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="squall-bench-") as handle:
        handle.write(script)
        handle.flush()
        options = ["-t1", f"-c{clients}", f"-d{seconds + MAX_DRAIN_SECONDS:.0f}s", "--timeout", "30s"]
        command = [wrk, *options, "-s", handle.name, base + target.path, "--", str(seconds), str(clients)]
        stdout, stderr, code = _run_until_drained(command)
    match = re.search(r"^BENCH (.*)$", stdout, re.MULTILINE)
    if code != 0 or match is None:
        raise RuntimeError(f"wrk failed ({code}):\n{stdout}\n{stderr}")
    fields = dict(item.split("=", 1) for item in match.group(1).split())
    statuses = {int(s): int(n) for s, n in (p.split(":") for p in fields["statuses"].split(",") if p)}
    if any(p.split(":")[1] != "0" for p in fields["errors"].split(",")):
        print(f"  wrk socket errors: {fields['errors']} (timeout = answers slower than 30 s)")
    return Measured(
        statuses, float(fields["seconds"]), int(fields["p50_us"]) / 1000, int(fields["p99_us"]) / 1000
    )


# --- asyncio client (fallback) --------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive client: sends the request again as soon as the answer is complete,
    until the deadline. Parses just enough HTTP/1.1 (status, Content-Length)."""

    def __init__(self, request: bytes, latencies: list[float], statuses: Counter[int]) -> None:
        self.request, self.latencies, self.statuses = request, latencies, statuses
        self.buffer = b""
        self.deadline = 0.0
        self.sent_at = 0.0
        self.finished: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def start(self, deadline: float) -> None:
        self.deadline = deadline
        self._send()

    def _send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        found = re.search(rb"\r\ncontent-length: *(\d+)", head)
        end = head_end + 4 + (int(found.group(1)) if found else 0)
        if len(self.buffer) < end:
            return
        now = time.perf_counter()
        self.latencies.append(now - self.sent_at)
        self.statuses[int(head[9:12])] += 1
        self.buffer = self.buffer[end:]
        if now < self.deadline:
            self._send()
        else:
            self.finished.set_result(now)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc or ConnectionError("server closed the connection"))


async def _drive(host: str, port: int, request: bytes, clients: int, seconds: float) -> Measured:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    conns: list[_Connection] = []
    for _ in range(clients):
        _, conn = await loop.create_connection(lambda: _Connection(request, latencies, statuses), host, port)
        conns.append(conn)
    started = time.perf_counter()
    for conn in conns:
        conn.start(started + seconds)
    last = max(await asyncio.gather(*(conn.finished for conn in conns)))
    latencies.sort()
    return Measured(
        dict(statuses), last - started, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    )


def _python_load(host: str, port: int, request: bytes, clients: int, seconds: float) -> Measured:
    try:
        import uvloop

        return uvloop.run(_drive(host, port, request, clients, seconds))
    except ImportError:
        return asyncio.run(_drive(host, port, request, clients, seconds))


def run_python(
    pool: ProcessPoolExecutor, base: str, target: Target, clients: int, seconds: float
) -> Measured:
    host, port = base.removeprefix("http://").split(":")
    body = target.body.encode()
    lines = [f"{target.method} {target.path} HTTP/1.1", f"host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in target.headers.items()]
    if body:
        lines.append(f"content-length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return pool.submit(_python_load, host, int(port), request, clients, seconds).result()


# --- the benchmark --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=DATABASES, default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--api-processes", type=int, default=2, help="squall serve --api-processes (one per core)"
    )
    parser.add_argument(
        "--rate-limit-per-minute", type=int, default=0,
        help="SQUALL_RATE_LIMIT_PER_MINUTE for the server (0: off); set it high to measure counting alone",
    )  # fmt: skip
    args = parser.parse_args()

    wrk = shutil.which("wrk") if args.loadgen != "python" else None
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if wrk is None and args.loadgen == "auto":
        print(
            "wrk not found: using the asyncio client (`apt-get install wrk` gives a stronger load generator)"
        )
    print(f"load generator: {wrk or 'asyncio client in its own process'}, {args.clients} connections")

    with bench_env(args.db) as env, ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:

        def load(base: str, target: Target, seconds: float) -> Measured:
            if wrk:
                return run_wrk(wrk, base, target, args.clients, seconds)
            return run_python(pool, base, target, args.clients, seconds)

        squall_cli(env, "db", "upgrade")
        key = json.loads(squall_cli(env, "keys", "create", "--name", "bench", "--json"))["api_key"]
        healthz = Target("GET", "/healthz")
        admit = Target("POST", "/jobs", {"x-api-key": key, "content-type": "application/json"}, JOB_BODY)
        limit = (
            {"SQUALL_RATE_LIMIT_PER_MINUTE": str(args.rate_limit_per_minute)}
            if args.rate_limit_per_minute
            else {}
        )
        with squall_server(env, api_processes=args.api_processes, settings=limit) as base:
            results: dict[str, Measured] = {}
            admitted = 0
            for label, target in (("healthz", healthz), ("POST /jobs", admit)):
                warm = load(base, target, args.warmup)
                results[label] = measured = load(base, target, args.seconds)
                print(measured.line(label))
                if target is admit:
                    admitted = warm.ok + measured.ok
            usage = httpx.get(f"{base}/usage", headers={"x-api-key": key}, timeout=30).json()

    jobs, health = results["POST /jobs"], results["healthz"]
    counted = usage["usage_count"]
    verdict = "ok" if counted == admitted else "MISMATCH"
    print(f"usage check: GET /usage usage_count={counted}, 200 answers to POST /jobs={admitted}: {verdict}")
    ratio = jobs.per_s / health.per_s if health.per_s else 0.0
    print(
        f"RESULT admission db={args.db} per_s={jobs.per_s:.1f} p50_ms={jobs.p50_ms:.2f} "
        f"p99_ms={jobs.p99_ms:.2f} ratio={ratio:.3f} rate_limit={args.rate_limit_per_minute or 'off'}"
    )
    return 0 if counted == admitted else 1


if __name__ == "__main__":
    run_main(main)
