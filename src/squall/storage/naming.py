"""Object key layout: ``[folder/]filename.ext``.

A name that is already taken by another job's file gets the job id's first 8 characters
appended (``name-1a2b3c4d.mp4``), or, if that is taken too, the whole job id, so no job
ever overwrites another job's output. Names are cut to 200 bytes of UTF-8 (file systems
count bytes, not characters)."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^\w\s().,&'+-]", re.UNICODE)
_SPACES = re.compile(r"\s+")
MAX_NAME_BYTES = 200  # leaves room for an extension, a job id and a staging suffix in 255


def sanitize_filename(name: str, fallback: str = "video") -> str:
    """Keep letters, digits, spaces and a little punctuation; drop the rest."""
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("", text)
    text = _SPACES.sub(" ", text).strip(" .")
    text = text.encode()[:MAX_NAME_BYTES].decode(errors="ignore").strip(" .")
    return text or fallback


def sanitize_folder(folder: str) -> str:
    parts = [sanitize_filename(part, "") for part in re.split(r"[/\\]+", folder)]
    return "/".join(part for part in parts if part)


def object_key(filename: str, extension: str, folder: str | None) -> str:
    name = f"{filename}.{extension}"
    prefix = sanitize_folder(folder) if folder else ""
    return f"{prefix}/{name}" if prefix else name


def alternate_key(key: str, job_id: str, *, full: bool = False) -> str:
    suffix = job_id if full else job_id[:8]
    stem, dot, extension = key.rpartition(".")
    return f"{stem}-{suffix}.{extension}" if dot else f"{key}-{suffix}"
