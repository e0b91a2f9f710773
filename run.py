#!/usr/bin/env python3
"""Set-up and entry point on a machine with only Python >= 3.11.

    python3 run.py serve [squall serve options]   start Squall on its embedded defaults
    python3 run.py test [pytest options]          run the test suite
    python3 run.py <any squall command>           e.g. keys create --name "My App"

The first call creates a virtual environment in .venv and installs the pinned dependencies
from requirements.lock (again only when that file or pyproject.toml changes)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".squall-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (run.py is what an older Python meets first)
        sys.exit(f"Squall needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print("installing pinned dependencies (first run only) …", flush=True)
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(wanted)


def main() -> int:
    args = sys.argv[1:] or ["--help"]
    ensure_environment()
    python = str(BIN / "python")
    if args[0] == "test":
        return subprocess.call([python, "-m", "pytest", *args[1:]], cwd=ROOT)
    return subprocess.call([python, "-m", "squall", *args])


if __name__ == "__main__":
    sys.exit(main())
