"""LLMCache: hits, misses, failure policy, circuit breaker, sample mode, stats."""

from __future__ import annotations

import logging

import pytest

from llmcache import (
    BackendError,
    CircuitBreaker,
    CodecError,
    ConfigError,
    KeyPolicy,
    LLMCache,
    from_url,
)
from llmcache.backends.memory import MemoryBackend
from llmcache.codec import Codec

LLM = "[('_type', 'fake-model'), ('temperature', 0.0)]"


class FlakyBackend(MemoryBackend):
    """A memory store that can be switched off, counting the calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise BackendError("store is down")

    def get(self, key: str) -> bytes | None:
        self._check()
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check()
        super().set(key, value, ttl)

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.set(key, value, ttl)


def test_miss_then_hit_counts_and_measures() -> None:
    cache = from_url("memory://")
    assert cache.lookup("p", LLM) is None
    cache.update("p", LLM, [{"text": "answer"}])
    assert cache.lookup("p", LLM) == [{"text": "answer"}]
    stats = cache.stats.as_dict()
    assert (stats["hits"], stats["misses"], stats["writes"], stats["hit_ratio"]) == (1, 1, 1, 0.5)
    assert stats["bytes_written"] > 0 and stats["lookup_ms"]["count"] == 2


async def test_async_path_sees_sync_writes() -> None:
    cache = from_url("memory://")
    cache.update("p", LLM, "sync-written")
    assert await cache.alookup("p", LLM) == "sync-written"
    await cache.aupdate("q", LLM, "async-written")
    assert cache.lookup("q", LLM) == "async-written"
    await cache.aclear()
    assert cache.lookup("p", LLM) is None


def test_store_fault_is_a_miss_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    backend = FlakyBackend()
    cache = LLMCache(backend)
    cache.update("p", LLM, "kept")
    backend.down = True
    with caplog.at_level(logging.WARNING, logger="llmcache"):
        for _ in range(3):
            assert cache.lookup("p", LLM) is None
            cache.update("p", LLM, "lost")  # swallowed
    assert len([r for r in caplog.records if "failed" in r.message]) == 1
    # One fault per call: after a failed lookup the same request's update does not try again.
    assert (cache.stats["errors"], cache.stats["skipped_after_fault"]) == (3, 3)
    backend.down = False
    # What was written before the fault is still there once the store is back.
    assert LLMCache(backend).lookup("p", LLM) == "kept"


def test_open_circuit_skips_the_store_then_probes() -> None:
    backend = FlakyBackend()
    cache = LLMCache(backend, breaker=CircuitBreaker(failures=2, cooldown=0.2))
    backend.down = True
    for _ in range(10):
        assert cache.lookup("p", LLM) is None
    assert backend.calls == 2  # after two faults, no call pays a timeout
    assert cache.stats["skipped_open_circuit"] == 8
    backend.down = False
    import time

    time.sleep(0.25)
    assert cache.lookup("p", LLM) is None  # the probe reaches the store: a plain miss
    cache.update("p", LLM, "back")
    assert cache.lookup("p", LLM) == "back"
    assert cache.breaker.state == "closed"


def test_on_error_raise_surfaces_the_fault() -> None:
    backend = FlakyBackend()
    backend.down = True
    cache = LLMCache(backend, on_error="raise")
    with pytest.raises(BackendError, match="store is down"):
        cache.lookup("p", LLM)


def test_sample_mode_keeps_k_answers_and_rotates() -> None:
    cache = LLMCache(MemoryBackend(), policy=KeyPolicy(temperature="sample:2"))
    hot = "[('_type', 'fake-model'), ('temperature', 1.0)]"
    cache.update("p", hot, "a")
    assert cache.lookup("p", hot) is None  # one of two answers: still a miss
    cache.update("p", hot, "b")
    cache.update("p", hot, "c")  # already full: not stored
    assert [cache.lookup("p", hot) for _ in range(4)] == ["a", "b", "a", "b"]


def test_foreign_or_misplaced_bytes_are_misses() -> None:
    backend = MemoryBackend()
    cache = LLMCache(backend)
    cache.update("p", LLM, "answer for p")
    cache.update("q", LLM, "answer for q")
    key_p = cache.policy.decide("p", LLM).key
    key_q = cache.policy.decide("q", LLM).key
    assert key_p and key_q
    backend.set(key_p, backend.get(key_q) or b"")  # q's value under p's key
    assert cache.lookup("p", LLM) is None
    assert cache.lookup("q", LLM) == "answer for q"
    assert cache.stats["decode_errors"] == 1


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b"", "bad magic"),
        (lambda b: b"{\"json\": true}", "bad magic"),
        (lambda b: b[:2] + bytes([9]) + b[3:], "format 9"),
        (lambda b: b[:3] + bytes([0x80]) + b[4:], "unknown flags"),
        (lambda b: b[:-3], "corrupt"),
    ],
)
def test_codec_rejects_what_is_not_ours(mangle: object, reason: str) -> None:
    codec = Codec(compress_min_bytes=16)
    data = codec.encode("k", {"text": "x" * 100})
    assert codec.decode("k", data) == {"text": "x" * 100}
    with pytest.raises(CodecError, match=reason):
        codec.decode("k", mangle(data))  # type: ignore[operator]


def test_codec_compresses_large_text_values() -> None:
    answer = {"text": "The quick brown fox jumps over the lazy dog. " * 200}
    plain, packed = Codec(compress_min_bytes=None), Codec()
    assert len(packed.encode("k", answer)) < len(plain.encode("k", answer)) / 5


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ConfigError, match="'sometimes'"):
        LLMCache(MemoryBackend(), on_error="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ttl -1"):
        LLMCache(MemoryBackend(), ttl=-1)


def test_sample_mode_keeps_one_answer_for_temperature_zero() -> None:
    cache = LLMCache(MemoryBackend(), policy=KeyPolicy(temperature="sample:3"))
    cache.update("p", LLM, "the greedy answer")  # LLM has temperature 0.0
    assert cache.lookup("p", LLM) == "the greedy answer"
    assert cache.policy.decide("p", LLM).samples == 1


def test_callers_may_change_what_a_hit_returns() -> None:
    cache = from_url("memory://")
    cache.update("p", LLM, {"text": "original", "tags": ["a"]})
    first = cache.lookup("p", LLM)
    first["text"] = "changed"
    first["tags"].append("b")
    assert cache.lookup("p", LLM) == {"text": "original", "tags": ["a"]}
