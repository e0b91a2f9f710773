"""Netscape cookie files: checked when a key sends its own, and combined with the operator's
into a private temporary file for one downloader child (yt-dlp also writes its cookie file
back when it closes, so it never gets the operator's own file)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from squall.errors import JobFailure

HEADER = "# Netscape HTTP Cookie File\n"
HTTPONLY_PREFIX = "#HttpOnly_"
MAX_COOKIE_BYTES = 256 * 1024
_FLAG = ("TRUE", "FALSE")


def cookie_lines(text: str) -> list[str]:
    """The cookie lines of a Netscape cookie file (domain, subdomains flag, path, secure flag,
    expiry, name, value; tab-separated). Raises ValueError saying what is wrong and where."""
    if len(text.encode()) > MAX_COOKIE_BYTES:
        raise ValueError(f"The cookie file is larger than {MAX_COOKIE_BYTES // 1024} KB")
    if text.lstrip()[:1] in ("{", "["):
        raise ValueError("Cookies must be in the Netscape cookie file format, not JSON")
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        entry = line[len(HTTPONLY_PREFIX) :] if line.startswith(HTTPONLY_PREFIX) else line
        if not entry.strip() or entry.startswith("#"):
            continue
        fields = entry.split("\t")
        if len(fields) != 7:
            raise ValueError(f"Line {number} is not a Netscape cookie: it needs 7 tab-separated fields "
                             f"(domain, subdomains, path, secure, expiry, name, value), not {len(fields)}")  # fmt: skip
        domain, subdomains, path, secure, expires, name, _value = fields
        if not domain or subdomains.upper() not in _FLAG or secure.upper() not in _FLAG:
            raise ValueError(f"Line {number}: the domain must be set and both flags TRUE or FALSE")
        if not path.startswith("/") or not name:
            raise ValueError(f"Line {number}: the path must start with / and the name must be set")
        if expires and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", expires):
            raise ValueError(f"Line {number}: the expiry must be a Unix time in seconds (or 0)")
        lines.append(line)
    if not lines:
        raise ValueError("No cookies found: send a Netscape cookie file (one cookie per line)")
    return lines


def netscape_text(text: str) -> str:
    """``text`` checked and normalised to a Netscape cookie file (header, then its cookies)."""
    return HEADER + "".join(f"{line}\n" for line in cookie_lines(text))


@contextmanager
def child_cookie_file(operator_file: str | None, key_cookies: str | None) -> Iterator[str | None]:
    """A 0600 temporary file with the operator's cookies, then the key's (the later of two
    cookies with the same domain, path and name wins); removed afterwards. None: no cookies."""
    parts = []
    if operator_file:
        try:
            with open(operator_file, encoding="utf-8") as handle:
                parts.extend(cookie_lines(handle.read()))
        except (OSError, ValueError) as exc:  # the message names no cookie, only the problem
            raise JobFailure(
                f"The operator's cookie file (SQUALL_COOKIES_FILE) cannot be used: {exc}"
            ) from None
    if key_cookies:
        parts.extend(cookie_lines(key_cookies))
    if not parts:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="squall-cookies-", suffix=".txt")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(HEADER + "".join(f"{line}\n" for line in parts))
        yield path
    finally:
        os.unlink(path)
