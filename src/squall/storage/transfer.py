"""Copy every object of one storage backend into another under the same keys (``squall
storage copy --to s3``): the books name objects by key, so after the copy only the backend
setting changes. An object already there with the same size is left alone (a copy can be
resumed); one there with another size is reported, never overwritten."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from squall.storage.base import Storage


@dataclass
class Transfer:
    copied: int = 0
    copied_bytes: int = 0
    already_there: int = 0
    conflicting: list[str] = field(default_factory=list)  # in both, with different sizes
    missing_after: list[str] = field(default_factory=list)  # not in the target after the copy

    @property
    def ok(self) -> bool:
        return not self.conflicting and not self.missing_after

    def as_text(self) -> str:
        lines = [
            f"copied {self.copied} objects ({self.copied_bytes} bytes); "
            f"{self.already_there} were already there"
        ]
        lines += [f"different size in the target, left alone: {key}" for key in self.conflicting]
        lines += [f"not in the target after the copy: {key}" for key in self.missing_after]
        lines.append("every object is in the target" if self.ok else "the target is incomplete")
        return "\n".join(lines)


def _put(source: Storage, target: Storage, key: str) -> bool:
    path = source.local_path(key)
    if path is not None:
        return target.put(path, key, overwrite=False)
    with tempfile.TemporaryDirectory(prefix="squall-copy-") as scratch:
        staged = Path(scratch) / "object"
        source.fetch(key, staged)
        return target.put(staged, key, overwrite=False)


def copy_objects(source: Storage, target: Storage, on_object: Callable[[str, int], None]) -> Transfer:
    result = Transfer()
    listed = list(source.listing())
    for key, size in listed:
        if _put(source, target, key):
            result.copied += 1
            result.copied_bytes += size
        elif target.size(key) == size:
            result.already_there += 1
        else:
            result.conflicting.append(key)
        on_object(key, size)
    there = dict(target.listing())
    result.missing_after = [
        key for key, size in listed if there.get(key) != size and key not in result.conflicting
    ]
    return result
