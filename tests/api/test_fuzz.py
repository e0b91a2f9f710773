"""Schemathesis (its CLI, against a live uvicorn) fuzzes every operation of /openapi.json, with a
valid key and with a wrong one: no answer is a 5xx, every answer matches the documented schema
(status, headers, body, ``Allow`` of a 405), a request the schema calls valid is accepted
(except where tests/support/fuzz.toml says why not), and every error is ``{"error": …}``.
Bounded by tests/support/fuzz.toml: a few examples per operation, a fixed seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "support" / "fuzz.toml"
ST = Path(sys.executable).with_name("st")


def _fuzz(base_url: str, key: str, tmp_path: Path, phases: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(ST), "--config-file", str(CONFIG), "run", f"{base_url}/openapi.json",
        "--header", f"x-api-key: {key}", "--phases", phases, "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks"}
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=240)


# With a wrong key every operation is refused before its parameters matter: the random phase
# alone shows those refusals are documented 401s with {"error": ...} (the coverage phase, the
# slow one, adds nothing there).
@pytest.mark.parametrize(
    ("which", "phases"), [("valid key", "examples,coverage,fuzzing"), ("wrong key", "fuzzing")]
)
def test_every_operation_survives_fuzzing(
    live_server: str, api_key: str, tmp_path: Path, which: str, phases: str
) -> None:
    key = api_key if which == "valid key" else "sk_live_not_a_key"
    run = _fuzz(live_server, key, tmp_path, phases)
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert re.search(r"Selected: (\d+)/\1\b", run.stdout), summary  # every operation of the document
