from __future__ import annotations

from pathlib import Path

import pytest

from squall.errors import JobFailure
from squall.pipeline.run import store
from squall.storage.local import LocalStorage
from squall.storage.naming import object_key, sanitize_filename, sanitize_folder

JOB = "1a2b3c4d-0000-4000-8000-000000000000"


def test_names_are_sanitised_and_cut_by_bytes() -> None:
    assert sanitize_filename('My: "clip"? <1>') == "My clip 1"
    assert sanitize_filename("../../etc/passwd") == "etcpasswd"
    assert sanitize_filename("???") == "video"
    long = sanitize_filename("動" * 200)
    assert len(long.encode()) <= 200 and long == "動" * 66
    assert sanitize_folder("a//b\\c/../d") == "a/b/c/d"
    assert object_key("clip", "mkv", "shows/2026") == "shows/2026/clip.mkv"


def test_a_taken_name_is_never_overwritten(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    source = tmp_path / "new.bin"
    source.write_bytes(b"new")
    (tmp_path / "a.mp4").write_bytes(b"first")
    (tmp_path / f"a-{JOB[:8]}.mp4").write_bytes(b"second")  # another job whose id starts alike
    key = store(storage, source, "a.mp4", JOB)
    assert key == f"a-{JOB}.mp4"
    assert (tmp_path / "a.mp4").read_bytes() == b"first"
    assert (tmp_path / f"a-{JOB[:8]}.mp4").read_bytes() == b"second"
    assert (tmp_path / key).read_bytes() == b"new"
    assert not list(tmp_path.glob(".*.part"))  # no staging file left behind


def test_a_storage_error_is_a_clear_final_failure(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    source = tmp_path / "new.bin"
    source.write_bytes(b"new")
    (tmp_path / "taken").write_bytes(b"a file where a folder is wanted")
    with pytest.raises(JobFailure) as failure:
        store(storage, source, "taken/clip.mp4", JOB)
    assert not failure.value.retryable
    assert failure.value.message.startswith("The file could not be stored under 'taken/clip.mp4'")
