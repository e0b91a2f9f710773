"""The multi-host test bed (issue 16): several "hosts" as Linux network namespaces on one
bridge, all on this machine, so Squall runs as it would on many machines sharing one
PostgreSQL and one bucket.

    .venv/bin/python -m bench.hostbed up [--worker-hosts 3] [--api-hosts 2]   # prints where things are
    .venv/bin/python -m bench.hostbed down [RUN_ID]                           # tears one run down

Layout of a run (``RUN_ID`` is 6 random hex digits; ``N`` a free third octet of 10.77.N.0/24,
picked under a lock so parallel runs never share names or addresses):

- a bridge ``sqb<RUN_ID>`` in the root namespace at 10.77.N.1 (the tests talk to the hosts from there);
- ``sqhb-<RUN_ID>-pg`` 10.77.N.2: its own PostgreSQL cluster (``initdb``/``pg_ctl``, trust for the subnet);
- ``sqhb-<RUN_ID>-s3`` 10.77.N.3: ``moto_server`` (S3), bucket ``squall``;
- ``sqhb-<RUN_ID>-media`` 10.77.N.4: generated media (lavfi); ``/slow/<name>?kbps=K`` paces
  each connection to K KiB/s (tests/support/server.py);
- ``sqhb-<RUN_ID>-api1..`` 10.77.N.11..: ``squall serve --workers 0`` on port 8000;
- ``sqhb-<RUN_ID>-w1..`` 10.77.N.21..: ``squall worker``.

Everything lives under /tmp/squall-hostbed-<RUN_ID> (cluster, logs, work dirs, state.json) and
``down`` removes processes, namespaces, the bridge and that folder, also after a failed ``up``.
Needs root and ``ip``; :func:`unavailable_reason` says why not when they are missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/local/bin")
LOCK = Path("/tmp/squall-hostbed.lock")
PREFIX = "10.77"
API_PORT, S3_PORT, MEDIA_PORT, PG_PORT = 8000, 5000, 8080, 5432
BUCKET = "squall"


def unavailable_reason() -> str | None:
    """Why the bed cannot be built here (None: it can)."""
    if os.geteuid() != 0:
        return "the host bed makes network namespaces, which needs root"
    for tool in ("ip", "runuser"):
        if shutil.which(tool) is None:
            return f"the host bed needs {tool!r} on PATH"
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"the host bed needs initdb and pg_ctl in {PG_BIN}"
    probe = f"sqhb-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this machine cannot create network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Host:
    role: str  # pg, s3, media, api1, w1, …
    ns: str
    address: str
    pid: int | None = None  # the process group leader of the host's service
    log: Path | None = None


@dataclass
class HostBed:
    api_hosts: int = 2
    worker_hosts: int = 3
    worker_concurrency: int = 2
    start_workers: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    octet: int = -1
    root: Path = Path()
    secret: str = ""
    hosts: dict[str, Host] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- addresses --------------------------------------------------------------------
    def address(self, role: str) -> str:
        return self.hosts[role].address

    @property
    def subnet(self) -> str:
        return f"{PREFIX}.{self.octet}.0/24"

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.address('pg')}:{PG_PORT}/squall"

    @property
    def s3_url(self) -> str:
        return f"http://{self.address('s3')}:{S3_PORT}"

    @property
    def media_url(self) -> str:
        return f"http://{self.address('media')}:{MEDIA_PORT}"

    def api_url(self, n: int) -> str:
        return f"http://{self.address(f'api{n}')}:{API_PORT}"

    @property
    def api_urls(self) -> list[str]:
        return [self.api_url(n) for n in range(1, self.api_hosts + 1)]

    @property
    def worker_roles(self) -> list[str]:
        return [f"w{n}" for n in range(1, self.worker_hosts + 1)]

    def environ(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
        env.update(
            SQUALL_DATA_DIR=str(data_dir), SQUALL_DATABASE_URL=self.database_url, SQUALL_SECRET_KEY=self.secret,
            SQUALL_STORAGE="s3", SQUALL_S3_ENDPOINT_URL=self.s3_url, SQUALL_S3_BUCKET=BUCKET,
            SQUALL_S3_REGION="us-east-1", SQUALL_S3_ACCESS_KEY_ID="bed", SQUALL_S3_SECRET_ACCESS_KEY="bed",
            SQUALL_S3_ADDRESSING_STYLE="path", SQUALL_ALLOWED_PRIVATE_NETWORKS=self.subnet,
            SQUALL_DEFAULT_RESERVATION_MB="1", PYTHONPATH=str(REPO),
        )  # fmt: skip
        env.update(self.extra_env)
        env.update(extra)
        return env

    # -- up ---------------------------------------------------------------------------
    def up(self) -> HostBed:
        try:
            self._network()
            self._media()  # these two start while the cluster is made
            self._s3()
            self._postgres()
            _wait_http(f"{self.media_url}/media/clip.mp4", 60, self.hosts["media"])
            _wait_http(self.s3_url, 60, self.hosts["s3"])
            import boto3  # here: the bed's module imports stay light for `down`

            boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1", aws_access_key_id="bed",
                         aws_secret_access_key="bed").create_bucket(Bucket=BUCKET)  # fmt: skip
            self.cli("db", "upgrade")
            for n in range(1, self.api_hosts + 1):
                self.start_api(n)
            if self.start_workers:
                for role in self.worker_roles:
                    self.start_worker(role)
            for n in range(1, self.api_hosts + 1):
                _wait_http(self.api_url(n) + "/healthz", 90, self.hosts[f"api{n}"])
            for role in self.worker_roles if self.start_workers else []:
                self.wait_worker(role)
        except BaseException:
            self.down()
            raise
        return self

    def _network(self) -> None:
        LOCK.touch(exist_ok=True)
        with LOCK.open() as lock:  # one allocation at a time: names and subnets stay unique
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.run_id = secrets.token_hex(3)
            taken = {int(m) for m in re.findall(rf"inet {PREFIX}\.(\d+)\.", _out("ip", "-4", "-o", "addr"))}
            self.octet = next(n for n in range(1, 255) if n not in taken)
            self.root = Path(f"/tmp/squall-hostbed-{self.run_id}")
            self.root.mkdir(mode=0o755)
            self.secret = secrets.token_urlsafe(32)
            bridge = f"sqb{self.run_id}"
            _ip("link", "add", bridge, "type", "bridge")
            self._save()  # from here on, `down` can find what to remove
            _ip("addr", "add", f"{PREFIX}.{self.octet}.1/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
        roles = ["pg", "s3", "media"] + [f"api{n}" for n in range(1, self.api_hosts + 1)] + self.worker_roles
        for index, role in enumerate(roles):
            last = {"pg": 2, "s3": 3, "media": 4}.get(role) or (
                10 + int(role[3:]) if role.startswith("api") else 20 + int(role[1:])
            )
            host = Host(role, f"sqhb-{self.run_id}-{role}", f"{PREFIX}.{self.octet}.{last}")
            self.hosts[role] = host
            _ip("netns", "add", host.ns)
            self._save()
            veth = f"sqv{self.run_id}{index:x}"
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
            _ip("link", "set", veth, "master", bridge, "up")
            for args in (("addr", "add", f"{host.address}/24", "dev", "eth0"), ("link", "set", "eth0", "up"),
                         ("link", "set", "lo", "up")):  # fmt: skip
                _ip("-n", host.ns, *args)

    def _postgres(self) -> None:
        pg = self.root / "pg"
        pg.mkdir()
        shutil.chown(pg, "postgres", "postgres")
        self._as_postgres(
            None, "initdb", "-D", str(pg / "data"), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        with (pg / "data" / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses='{self.address('pg')}'\nport={PG_PORT}\nunix_socket_directories='{pg}'\n"
                       "fsync=off\nsynchronous_commit=off\nfull_page_writes=off\nshared_buffers=32MB\n"
                       "max_connections=200\n")  # fmt: skip
        with (pg / "data" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        self.start_postgres()
        import psycopg  # over the bridge, as every host reaches it

        with psycopg.connect(
            f"postgresql://postgres@{self.address('pg')}:{PG_PORT}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE squall")

    def _as_postgres(self, role: str | None, tool: str, *args: str) -> None:
        prefix = ["ip", "netns", "exec", self.hosts[role].ns] if role else []
        command = [*prefix, "runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root / "pg")

    def start_postgres(self) -> None:
        data, log = self.root / "pg" / "data", self.root / "pg" / "log"
        self._as_postgres("pg", "pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")

    def stop_postgres(self, mode: str = "fast") -> None:
        self._as_postgres(
            "pg", "pg_ctl", "-D", str(self.root / "pg" / "data"), "-m", mode, "-w", "-t", "60", "stop"
        )

    def _s3(self) -> None:
        moto = str(Path(sys.executable).parent / "moto_server")
        self.spawn("s3", [moto, "-H", self.address("s3"), "-p", str(S3_PORT)], os.environ.copy())

    def _media(self) -> None:
        from tests.support.media import video

        folder = self.root / "media"
        folder.mkdir()
        video(folder / "clip.mp4", size="160x90", seconds=2)
        command = [sys.executable, "-m", "tests.support.hostbed", str(folder), self.address("media")]
        self.spawn("media", command, {**os.environ, "PYTHONPATH": str(REPO)})

    # -- processes ----------------------------------------------------------------------
    def spawn(self, role: str, command: Sequence[str], env: dict[str, str]) -> None:
        host = self.hosts[role]
        host.log = self.root / f"{role}.log"
        with host.log.open("ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", host.ns, *command], env=env, cwd=REPO,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self._procs[role], host.pid = proc, proc.pid
        self._save()

    def start_api(self, n: int) -> None:
        role = f"api{n}"
        data = self.root / role
        data.mkdir(exist_ok=True)
        env = self.environ(data, SQUALL_PUBLIC_URL=self.api_url(n))
        self.spawn(role, [sys.executable, "-m", "squall", "serve", "--workers", "0",
                          "--host", self.address(role), "--port", str(API_PORT)], env)  # fmt: skip

    def start_worker(self, role: str) -> None:
        data = self.root / role
        data.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "squall", "worker", "--concurrency", str(self.worker_concurrency)]
        self.spawn(role, command, self.environ(data))

    def wait_worker(self, role: str, timeout: float = 90) -> None:
        host = self.hosts[role]
        deadline = time.monotonic() + timeout
        while "worker started" not in _read(host.log):
            _check_alive(self._procs.get(role), host)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{role} did not start: {_read(host.log)[-2000:]}")
            time.sleep(0.2)

    def stop(self, role: str, timeout: float = 15) -> None:
        """SIGTERM to the host's process group, SIGKILL after ``timeout``."""
        host = self.hosts[role]
        if host.pid is None:
            return
        _stop_group(host.pid, timeout)
        if (proc := self._procs.pop(role, None)) is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        host.pid = None
        self._save()

    def alive(self) -> dict[str, bool]:
        return {role: proc.poll() is None for role, proc in self._procs.items()}

    def pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self._procs.items()}

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m squall ARGS`` from the root namespace (the database is on the bridge)."""
        data = self.root / "cli"
        data.mkdir(exist_ok=True)
        return subprocess.run([sys.executable, "-m", "squall", *args], env=self.environ(data), cwd=REPO,
                              capture_output=True, text=True, check=check, timeout=timeout)  # fmt: skip

    def log(self, role: str) -> str:
        return _read(self.hosts[role].log)

    def completed_by_host(self) -> dict[str, Counter[str]]:
        """Per worker host, how many times its log says each job completed."""
        pattern = re.compile(r"job completed.*?job_id=(\S+)")
        return {role: Counter(pattern.findall(_read(self.hosts[role].log))) for role in self.worker_roles}

    # -- down ---------------------------------------------------------------------------
    def down(self) -> None:
        """Remove everything this run made; safe to call twice and after a failed ``up``."""
        roles = [role for role in reversed(list(self.hosts)) if role != "pg"]
        for role in roles:  # all at once: each takes a moment to wind down
            if (pid := self.hosts[role].pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        for role in roles:
            with contextlib.suppress(Exception):
                self.stop(role, timeout=5)
        data = self.root / "pg" / "data"
        if "pg" in self.hosts and (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop_postgres("immediate")
        for host in self.hosts.values():  # anything left in a namespace (a stray child) goes too
            for pid in _out("ip", "netns", "pids", host.ns).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        if self.run_id:
            subprocess.run(["ip", "link", "del", f"sqb{self.run_id}"], capture_output=True)
        if self.root != Path() and self.root.name.startswith("squall-hostbed-"):
            shutil.rmtree(self.root, ignore_errors=True)
        self.hosts.clear()

    def __enter__(self) -> HostBed:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- state (for `down` from another process) --------------------------------------
    def _save(self) -> None:
        state = {"run_id": self.run_id, "octet": self.octet, "secret": self.secret,
                 "api_hosts": self.api_hosts, "worker_hosts": self.worker_hosts,
                 "hosts": {r: [h.ns, h.address, h.pid] for r, h in self.hosts.items()}}  # fmt: skip
        (self.root / "state.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, run_id: str) -> HostBed:
        root = Path(f"/tmp/squall-hostbed-{run_id}")
        state = json.loads((root / "state.json").read_text())
        bed = cls(api_hosts=state["api_hosts"], worker_hosts=state["worker_hosts"], run_id=run_id,
                  octet=state["octet"], root=root, secret=state["secret"])  # fmt: skip
        for role, (ns, address, pid) in state["hosts"].items():
            bed.hosts[role] = Host(role, ns, address, pid, root / f"{role}.log")
        return bed


def _out(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout


def _read(path: Path | None) -> str:
    try:
        return path.read_text(errors="replace") if path else ""
    except FileNotFoundError:
        return ""


def _check_alive(proc: subprocess.Popen[bytes] | None, host: Host) -> None:
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{host.role} exited with {proc.returncode}: {_read(host.log)[-2000:]}")


def _wait_http(url: str, timeout: float, host: Host) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer in {timeout} s: {_read(host.log)[-2000:]}")
        time.sleep(0.2)


def _stop_group(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _serve_media(folder: str, address: str) -> None:
    from http.server import ThreadingHTTPServer

    from tests.support.server import make_handler

    httpd = ThreadingHTTPServer((address, MEDIA_PORT), make_handler(Path(folder), []))
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()


if __name__ == "__main__":  # the media host's server: python -m tests.support.hostbed FOLDER ADDRESS
    _serve_media(sys.argv[1], sys.argv[2])
