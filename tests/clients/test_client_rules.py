"""The client library's rules that need no server: when a failed attempt is sent again and
after how long, how options are sent, and how error answers become exceptions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from squall_client import PermissionDenied, QuotaExceeded, RetryPolicy, ServerError, SquallError
from squall_client._core import Call, Poller, timeout_for
from squall_client.calls import clean_options, create_job, get_job, metadata, retry_job
from squall_client.errors import error_for

NO_JITTER = RetryPolicy(max_retries=3, backoff=1.0, max_backoff=4.0, jitter=lambda low, high: high)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def wait(call: Call[Any], attempt: int = 0, **outcome: Any) -> float | None:
    return NO_JITTER.wait_before_retry(call, attempt, **outcome)


def test_a_request_that_never_left_is_retried_whatever_the_call() -> None:
    assert wait(retry_job("j"), error=httpx.ConnectError("refused")) == 1.0
    assert wait(retry_job("j"), error=httpx.PoolTimeout("busy")) == 1.0


def test_a_lost_answer_is_retried_only_when_sending_twice_is_safe() -> None:
    lost = httpx.ReadError("connection reset")
    assert wait(retry_job("j"), error=lost) is None  # a second retry job could be made
    assert wait(get_job("j"), error=lost) == 1.0
    assert wait(create_job("http://x/a.mp4", {}, None), error=lost) == 1.0  # its Idempotency-Key
    assert wait(retry_job("j"), response=answer(502)) is None
    assert wait(create_job("http://x/a.mp4", {}, None), response=answer(504)) == 1.0


def test_refusals_for_now_are_retried_after_the_servers_retry_after_within_a_cap() -> None:
    assert wait(retry_job("j"), response=answer(503)) == 1.0
    assert wait(retry_job("j"), response=answer(429, **{"Retry-After": "7"})) == 7.0
    assert wait(retry_job("j"), response=answer(429, **{"Retry-After": "3600"})) == 60.0
    assert wait(retry_job("j"), response=answer(429, **{"Retry-After": "soon"})) == 1.0
    assert wait(get_job("j"), response=answer(500)) is None  # a bug is not transient
    assert wait(get_job("j"), response=answer(404)) is None


def test_backoff_doubles_to_its_ceiling_and_retries_are_bounded() -> None:
    waits = [wait(get_job("j"), attempt, response=answer(503)) for attempt in range(4)]
    assert waits == [1.0, 2.0, 4.0, None]


def test_each_create_call_has_its_own_key_unless_given_one() -> None:
    first, second = create_job("http://x/a.mp4", {}, None), create_job("http://x/a.mp4", {}, None)
    assert first.idempotency_key and second.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert create_job("http://x/a.mp4", {}, "mine").headers() == {"Idempotency-Key": "mine"}


def test_options_are_sent_as_documented() -> None:
    sent = clean_options({"max_resolution": 720, "clip_start": 90, "clip_end": 12.5, "folder": None,
                          "audio_only": True})  # fmt: skip
    assert sent == {"max_resolution": "720", "clip_start": "90", "clip_end": "12.5", "audio_only": True}


def test_error_answers_become_exceptions_with_their_fields() -> None:
    quota = error_for(403, {"error": "Storage quota exceeded", "limit_gb": "1.00", "used_gb": "0.50",
                            "message": "This API key has a 1 GB limit and has used 0.50 GB"})  # fmt: skip
    assert isinstance(quota, QuotaExceeded)
    assert (quota.limit_gb, quota.used_gb, quota.stored_gb, quota.reserved_gb) == ("1.00", "0.50", None, None)
    newer = error_for(403, {"error": "Storage quota exceeded", "limit_gb": "1.00", "used_gb": "0.50",
                            "stored_gb": "0.25", "reserved_gb": "0.25", "message": "…"})  # fmt: skip
    assert isinstance(newer, QuotaExceeded) and (newer.stored_gb, newer.reserved_gb) == ("0.25", "0.25")
    assert type(error_for(403, {"error": "Forbidden"})) is PermissionDenied
    gateway = error_for(502, "<html>Bad Gateway</html>")  # a proxy's page, not JSON
    assert (
        isinstance(gateway, ServerError) and gateway.status_code == 502 and "Bad Gateway" in gateway.message
    )


def test_an_answer_that_is_not_the_documented_shape_is_a_squall_error() -> None:
    page = httpx.Response(200, text="<html>a captive portal</html>")
    with pytest.raises(SquallError, match="Unexpected answer to GET /jobs/j"):
        get_job("j").finish(page)
    with pytest.raises(SquallError, match="Unexpected answer"):
        get_job("j").finish(httpx.Response(200, json={"id": "j"}))  # no url, no status


def test_calls_the_server_may_take_long_over_wait_longer_than_the_clients_default() -> None:
    default = httpx.Timeout(30.0)
    assert timeout_for(get_job("j"), default) is default
    assert timeout_for(metadata("http://x/a.mp4"), default).read == 75.0  # the server gives up at 60 s
    assert timeout_for(create_job("http://x/show.rss", {}, None), default).read == 150.0  # feeds: 120 s
    assert timeout_for(metadata("http://x/a.mp4"), httpx.Timeout(300.0)).read == 300.0  # longer stays


def test_the_poller_stops_at_its_deadline() -> None:
    poller = Poller(timeout=0, first=1, largest=2)
    assert poller.pause() is None
    growing = Poller(timeout=60, first=1, largest=2)
    assert [growing.pause() for _ in range(3)] == [1, 1.5, 2]


def test_an_api_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from squall_client import Squall

    monkeypatch.delenv("SQUALL_API_KEY", raising=False)
    with pytest.raises(ValueError, match="API key"):
        Squall()
