"""disk:// under faults: bounded lock waits, never unpickling, bad paths as clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import diskcache
import pytest

from llmcache import LLMCache
from llmcache.backends.disk import DiskBackend, DiskOptions
from llmcache.codec import new_encryption_key
from llmcache.errors import BackendError
from llmcache.registry import create_backend

LLM = "[('_type', 'fake-model'), ('temperature', 0.0)]"


class Evil:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _hold_write_lock(directory: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding SQLite's write lock on ``directory`` for ``seconds``."""
    code = textwrap.dedent(
        f"""
        import sys, time, diskcache
        cache = diskcache.Cache({str(directory)!r})
        with cache.transact():
            cache.set("held", b"x")
            print("locked", flush=True)
            time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
    return proc


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_another_process_holding_the_lock_costs_one_timeout(
    tmp_path: Path, mode: str
) -> None:
    cache = LLMCache.from_url(f"disk://{tmp_path}/c", timeout=0.2)
    cache.update("warm", LLM, "x")  # the directory exists before the other process opens it
    proc = _hold_write_lock(tmp_path / "c", seconds=8)
    try:
        start = time.perf_counter()
        if mode == "sync":
            cache.update("p", LLM, "answer")
        else:
            await cache.aupdate("p", LLM, "answer")
        took = time.perf_counter() - start
        assert took < 1.5, f"a write waited {took:.2f} s for the lock (timeout 0.2 s)"
        assert cache.stats["errors"] == 1
        # Reads never wait for a writer (WAL): the entry written before is still a hit.
        assert cache.lookup("warm", LLM) == "x"
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    cache.update("p", LLM, "answer")
    assert cache.lookup("p", LLM) == "answer"
    cache.close()


def test_a_lock_held_in_the_same_process_is_bounded_too(tmp_path: Path) -> None:
    store = DiskBackend(DiskOptions(path=tmp_path / "c", timeout=0.2))
    store.set("a", b"1")
    other = diskcache.Cache(str(tmp_path / "c"))
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.transact():
            other.set("held", b"x")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(5)
        start = time.perf_counter()
        with pytest.raises(BackendError, match="timed out"):
            store.set("b", b"2")
        assert time.perf_counter() - start < 1.5
        assert store.get("a") == b"1"
    finally:
        release.set()
        holder.join()
        other.close()
        store.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_pickled_values_and_keys_are_never_unpickled(tmp_path: Path, encrypted: bool) -> None:
    key = new_encryption_key() if encrypted else None
    cache = LLMCache.from_url(f"disk://{tmp_path}/c", encryption_key=key)
    decision = cache.policy.decide("p", LLM)
    assert decision.key is not None
    marker = tmp_path / "pwned"
    foreign = diskcache.Cache(str(tmp_path / "c"))
    foreign.set(cache.backend._key(decision.key), Evil(marker))  # a pickle at our key
    foreign.set(("tuple", "key"), b"v")  # a pickled key, seen by key listing
    foreign.set(Evil(marker), b"v")  # a key whose unpickling runs code
    foreign.close()
    assert cache.lookup("p", LLM) is None
    listing = create_backend(f"disk://{tmp_path}/c")
    assert isinstance(listing, DiskBackend)
    assert list(listing.iter_keys()) == [decision.key]  # pickled keys are not listed
    assert not marker.exists(), "a pickle in the cache directory ran code"
    listing.close()
    cache.close()
