#!/usr/bin/env python3
"""Set-up and entry point on a machine with only Python >= 3.11.

    python3 run.py serve [squall serve options]   start Squall on its embedded defaults
    python3 run.py test [pytest options]          run the test suite
    python3 run.py develop                        install the development tools (ruff, mypy, …)
    python3 run.py <any squall command>           e.g. keys create --name "My App"
    python3 run.py --help                         Squall's commands

The first call creates a virtual environment in .venv and installs the pinned dependencies
from requirements.lock (again only when that file or pyproject.toml changes); `test` and
`develop` also install the development pins of requirements-dev.lock on top."""

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
RUNTIME_LOCKS = ("requirements.lock",)
DEV_LOCKS = ("requirements.lock", "requirements-dev.lock")
STAMPS = {RUNTIME_LOCKS: VENV / ".squall-installed", DEV_LOCKS: VENV / ".squall-dev-installed"}


def _fingerprint(locks: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in (*locks, "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment(locks: tuple[str, ...] = RUNTIME_LOCKS) -> None:
    """A .venv holding the pins of ``locks``, (re)installed only when they or pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  (run.py is what an older Python meets first)
        sys.exit(f"Squall needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = STAMPS[locks]
    if stamp.exists() and stamp.read_text() == _fingerprint(locks):
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    what = "development" if locks == DEV_LOCKS else "pinned"
    print(f"installing {what} dependencies (first run only) …", flush=True)
    requirements = [arg for lock in locks for arg in ("-r", str(ROOT / lock))]
    subprocess.run([*pip, *requirements], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    for installed, its_stamp in STAMPS.items():  # the development pins include the runtime's
        if set(installed) <= set(locks):
            its_stamp.write_text(_fingerprint(installed))


def _run(command: list[str]) -> int:
    """Become ``command`` on POSIX, so signals (kill, Ctrl-C) reach Squall itself, not a launcher."""
    sys.stdout.flush()
    if os.name == "posix":
        os.execv(command[0], command)
    return subprocess.call(command)


def main() -> int:
    args = sys.argv[1:] or ["--help"]
    python = str(BIN / "python")
    if args[0] in ("test", "develop"):
        ensure_environment(DEV_LOCKS)
        if args[0] == "develop":
            print(f"development tools installed in {VENV}")
            return 0
        os.chdir(ROOT)
        return _run([python, "-m", "pytest", *args[1:]])
    ensure_environment(RUNTIME_LOCKS)
    if args[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1] + "\n", flush=True)
    return _run([python, "-m", "squall", *args])


if __name__ == "__main__":
    sys.exit(main())
