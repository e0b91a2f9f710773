"""Local stand-ins for the storage tests, all on 127.0.0.1: moto's S3 server, Azurite, the GCS
emulator, a token endpoint for service accounts, and an endpoint that never answers."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts TCP connections and never says a word (a stalled or black-holed bucket)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Azurite's documented development account (public, fixed: not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="session")
def azurite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service on 127.0.0.1 (npm ``azurite``; .ci/run installs it)."""
    if os.environ.get("SQUALL_TEST_DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("the Azurite tests run in the SQLite pass only (CI budget: Azurite takes seconds to start; "
                    "the database plays no provider-specific part)")  # fmt: skip
    program = shutil.which("azurite-blob")
    if program is None:
        pytest.skip("azurite-blob is not installed (npm install -g azurite); the Azure Blob tests need it")
    port = free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [program, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence", "--silent",
         "--skipApiVersionCheck", "--disableTelemetry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workspace,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("azurite-blob did not start within 30 s")
        yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """``gcp-storage-emulator`` (PyPI), in memory, on 127.0.0.1."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class TokenStandIn(http.server.BaseHTTPRequestHandler):
    """A stand-in for Google's OAuth token endpoint (none runs locally): grants a token to any
    service account whose e-mail does not start with "revoked"."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        assertion = urllib.parse.parse_qs(body).get("assertion", [""])[0]
        claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
        revoked = str(claims.get("iss", "")).startswith("revoked")
        answer = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."} if revoked \
            else {"access_token": "stand-in-token", "expires_in": 3600, "token_type": "Bearer"}  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(400 if revoked else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="session")
def token_uri() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()
    server.server_close()
