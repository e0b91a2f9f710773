"""Signed, expiring delivery URLs for objects Squall serves itself (``/files/...``)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

SIGNED_URL_SECONDS = 24 * 3600


def signature(job_id: str, name: str, expires: int, secret: str) -> str:
    message = f"{job_id}/{name}/{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def signed_url(public_url: str, job_id: str, name: str, *, secret: str, now_s: int) -> str:
    # Round expiry to the hour so repeated GETs of a job give the same cacheable URL.
    expires = (now_s // 3600 + 1) * 3600 + SIGNED_URL_SECONDS
    sig = signature(job_id, name, expires, secret)
    return f"{public_url.rstrip('/')}/files/{job_id}/{quote(name)}?expires={expires}&sig={sig}"


def verify(job_id: str, name: str, expires: int, sig: str, *, secret: str, now_s: int) -> bool:
    if expires < now_s:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged link may have them).
    return hmac.compare_digest(signature(job_id, name, expires, secret).encode(), sig.encode())
