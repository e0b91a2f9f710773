"""A Schemathesis check for tests/api/test_fuzz.py: every error answer is ``{"error": …}``
(HEAD answers have no body to check)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def errors_are_error_objects(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
        raise AssertionError(f"error answer is not {{'error': ...}}: {response.text[:200]!r}")
    return None
