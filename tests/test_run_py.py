"""run.py's two locks: which pins each command installs, and when they are installed again.
pip is replaced by a stand-in `.venv/bin/python` that records its arguments (a real install
takes minutes); everything else is run.py's own code on real files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("squall_launcher", RUN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("requirements.lock", "requirements-dev.lock", "pyproject.toml"):
        (tmp_path / name).write_text(f"{name} v1\n")
    venv, log = tmp_path / ".venv", tmp_path / "pip.log"
    (venv / "bin").mkdir(parents=True)
    standin = venv / "bin" / "python"
    standin.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    standin.chmod(0o755)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "BIN", venv / "bin")
    monkeypatch.setattr(
        module,
        "STAMPS",
        {module.RUNTIME_LOCKS: venv / ".squall-installed", module.DEV_LOCKS: venv / ".squall-dev-installed"},
    )
    return module


def installs(root: Path) -> list[str]:
    """The requirement files of each `pip install -r …` since the last call."""
    log = root / "pip.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [
        " ".join(Path(part).name for part in line.split() if part.endswith(".lock"))
        for line in lines
        if " -r " in line
    ]


def test_serve_installs_the_runtime_lock_and_test_adds_the_dev_lock(launcher: ModuleType) -> None:
    root: Path = launcher.ROOT
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == ["requirements.lock"]
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == []  # nothing changed
    launcher.ensure_environment(launcher.DEV_LOCKS)
    assert installs(root) == ["requirements.lock requirements-dev.lock"]
    launcher.ensure_environment(launcher.DEV_LOCKS)
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == []


def test_a_changed_lock_is_installed_again_where_it_is_used(launcher: ModuleType) -> None:
    root: Path = launcher.ROOT
    launcher.ensure_environment(launcher.DEV_LOCKS)  # also stamps the runtime set
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == ["requirements.lock requirements-dev.lock"]

    (root / "requirements-dev.lock").write_text("requirements-dev.lock v2\n")
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == []  # serve does not care about the development pins
    launcher.ensure_environment(launcher.DEV_LOCKS)
    assert installs(root) == ["requirements.lock requirements-dev.lock"]

    (root / "requirements.lock").write_text("requirements.lock v2\n")
    launcher.ensure_environment(launcher.RUNTIME_LOCKS)
    assert installs(root) == ["requirements.lock"]
    launcher.ensure_environment(launcher.DEV_LOCKS)  # the dev set is checked against the new pins
    assert installs(root) == ["requirements.lock requirements-dev.lock"]
