"""KeyCache: hits within the ttl, expiry at the boundary, the size bound, thread safety."""

from __future__ import annotations

import threading

import pytest

from squall.keys.cache import KeyCache
from squall.keys.service import AuthenticatedKey


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_key(key_id: str) -> AuthenticatedKey:
    return AuthenticatedKey(
        id=key_id,
        client_name=f"client {key_id}",
        key_type="unlimited",
        max_resolution=None,
        max_duration_seconds=None,
        max_filesize_bytes=None,
        stripe_subscription_id=None,
    )


def test_get_within_ttl_returns_the_same_key() -> None:
    """A key put into the cache comes back, as the same object, until the ttl runs out."""
    clock = FakeClock(100.0)
    cache = KeyCache(ttl=10.0, clock=clock)
    key = make_key("k1")
    cache.put("digest-1", key)
    assert cache.get("digest-1") is key
    clock.now = 109.5
    assert cache.get("digest-1") is key


def test_get_of_unknown_digest_is_a_miss() -> None:
    """A digest that was never put is a miss, on an empty cache and beside other entries."""
    cache = KeyCache(ttl=10.0, clock=FakeClock())
    assert cache.get("nope") is None
    cache.put("digest-1", make_key("k1"))
    assert cache.get("nope") is None
    assert cache.get("digest-1") is not None


def test_entry_expires_exactly_at_the_ttl_boundary() -> None:
    """An entry put at t is a hit just before t + ttl and a miss at exactly t + ttl and after."""
    clock = FakeClock(100.0)
    cache = KeyCache(ttl=5.0, clock=clock)
    key = make_key("k1")
    cache.put("digest-1", key)
    clock.now = 104.75
    assert cache.get("digest-1") is key
    clock.now = 105.0
    assert cache.get("digest-1") is None
    clock.now = 200.0
    assert cache.get("digest-1") is None


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_nonpositive_ttl_disables_the_cache(ttl: float) -> None:
    """With ttl <= 0 put stores nothing and get always misses."""
    cache = KeyCache(ttl=ttl, clock=FakeClock())
    cache.put("digest-1", make_key("k1"))
    assert cache.get("digest-1") is None
    assert len(cache._entries) == 0


def test_put_beyond_max_entries_evicts_least_recently_put_even_if_just_read() -> None:
    """The bound evicts in put order: a get does not protect an entry from eviction."""
    cache = KeyCache(ttl=60.0, max_entries=3, clock=FakeClock())
    keys = {d: make_key(d) for d in ("a", "b", "c", "d")}
    for digest in ("a", "b", "c"):
        cache.put(digest, keys[digest])
    assert cache.get("a") is keys["a"]  # a read, which does not reorder
    cache.put("d", keys["d"])
    assert cache.get("a") is None
    for digest in ("b", "c", "d"):
        assert cache.get(digest) is keys[digest]


def test_re_put_makes_a_digest_the_newest_for_eviction() -> None:
    """Putting an existing digest again moves it to the back of the eviction order."""
    cache = KeyCache(ttl=60.0, max_entries=3, clock=FakeClock())
    keys = {d: make_key(d) for d in ("a", "b", "c", "d")}
    for digest in ("a", "b", "c", "a"):
        cache.put(digest, keys[digest])
    cache.put("d", keys["d"])
    assert cache.get("b") is None
    for digest in ("a", "c", "d"):
        assert cache.get(digest) is keys[digest]


def test_re_put_refreshes_the_expiry() -> None:
    """Putting a digest again restarts its ttl from the time of that put, with the new key."""
    clock = FakeClock(0.0)
    cache = KeyCache(ttl=10.0, clock=clock)
    cache.put("digest-1", make_key("old"))
    clock.now = 8.0
    new = make_key("new")
    cache.put("digest-1", new)
    clock.now = 15.0  # past the first put's expiry (10), before the second's (18)
    assert cache.get("digest-1") is new
    clock.now = 18.0
    assert cache.get("digest-1") is None


def test_concurrent_puts_and_gets_never_raise_or_exceed_max_entries() -> None:
    """Eight threads putting and getting at once see only correct keys and never overfill the cache."""
    max_entries = 16
    cache = KeyCache(ttl=60.0, max_entries=max_entries, clock=FakeClock())
    digests = [f"digest-{i}" for i in range(64)]
    keys = {d: make_key(d) for d in digests}
    errors: list[BaseException] = []
    overfull: list[int] = []
    wrong: list[str] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        try:
            start.wait(timeout=5)
            for i in range(3000):
                digest = digests[(seed * 7 + i * 13) % len(digests)]
                if i % 2:
                    cache.put(digest, keys[digest])
                else:
                    got = cache.get(digest)
                    if got is not None and got is not keys[digest]:
                        wrong.append(digest)
                if i % 100 == 0:
                    with cache._lock:  # a consistent view, not one caught mid-put
                        size = len(cache._entries)
                    if size > max_entries:
                        overfull.append(size)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert wrong == []
    assert overfull == []
    # Far more than max_entries distinct digests were put and nothing expired: exactly the bound remains.
    assert sum(cache.get(d) is not None for d in digests) == max_entries
