"""Bounded byte logs on Redis strings: the ``Logs`` capability of the Redis backends.

The semantic index keeps each LSH bucket as one string of fixed-width records: ``APPEND`` adds
one (with ``PEXPIRE``), ``GETRANGE key -max_bytes -1`` reads the newest. One reply per bucket
instead of one per element: at 10^5 entries a lookup reads ~5,000 records, and parsing them as
list elements cost three times as much as the same bytes as strings. A log past twice its
bound is cut back to the newest ``max_bytes`` (``GETRANGE`` then ``SET ... KEEPTTL``; an append
landing between the two is lost, which costs the index a candidate, never a wrong answer).

Example::

    from llmcache.registry import create_backend

    store = create_backend("redis://localhost:6379/0", namespace="demo")
    store.log_append_many(["a", "b"], b"0123", max_bytes=8, ttl=60)
    store.log_append_many(["a"], b"4567", max_bytes=8, ttl=60)
    assert store.log_tail_many(["a", "b", "c"], 8) == [b"01234567", b"0123", b""]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmcache.backends.capabilities import TTL
from llmcache.backends.redis._host import RedisHost
from llmcache.errors import ConfigError

__all__ = ["RedisLogs"]


class RedisLogs(RedisHost):
    """``log_append_many`` / ``log_tail_many`` and async twins, mixed into the Redis backends."""

    def log_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None:
        """Append ``record`` to each log in one pipeline; cut logs past twice ``max_bytes``."""
        px = self._px(ttl)
        full = [self._key(k) for k in _checked(keys, max_bytes)]
        if not full:
            return
        with (
            self._errors("APPEND (pipelined)"),
            self._budget(),
            self._client().pipeline(transaction=False) as pipe,
        ):
            _queue_append(pipe, full, record, px)
            long = _too_long(full, pipe.execute(), max_bytes)
        if long:
            with (
                self._errors("GETRANGE (pipelined)"),
                self._budget(),
                self._client().pipeline(transaction=False) as pipe,
            ):
                tails = _queue_tails(pipe, long, max_bytes).execute()
                for key, tail in zip(long, tails, strict=True):
                    pipe.set(key, tail, keepttl=True)
                pipe.execute()

    def log_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]:
        """The newest ``max_bytes`` of each log (``b""`` if absent), in one pipeline."""
        full = [self._key(k) for k in _checked(keys, max_bytes)]
        if not full:
            return []
        with (
            self._errors("GETRANGE (pipelined)"),
            self._budget(),
            self._client().pipeline(transaction=False) as pipe,
        ):
            return [bytes(v or b"") for v in _queue_tails(pipe, full, max_bytes).execute()]

    async def alog_append_many(
        self, keys: Sequence[str], record: bytes, *, max_bytes: int, ttl: TTL = None
    ) -> None:
        """Async :meth:`log_append_many`."""
        px = self._px(ttl)
        full = [self._key(k) for k in _checked(keys, max_bytes)]
        if not full:
            return
        with self._errors("APPEND (pipelined)"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=False) as pipe:
                    _queue_append(pipe, full, record, px)
                    long = _too_long(full, await pipe.execute(), max_bytes)
        if long:
            with self._errors("GETRANGE (pipelined)"):
                async with self._abudget():
                    client = await self._aclient()
                    async with client.pipeline(transaction=False) as pipe:
                        tails = await _queue_tails(pipe, long, max_bytes).execute()
                        for key, tail in zip(long, tails, strict=True):
                            pipe.set(key, tail, keepttl=True)
                        await pipe.execute()

    async def alog_tail_many(self, keys: Sequence[str], max_bytes: int) -> list[bytes]:
        """Async :meth:`log_tail_many`."""
        full = [self._key(k) for k in _checked(keys, max_bytes)]
        if not full:
            return []
        with self._errors("GETRANGE (pipelined)"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=False) as pipe:
                    replies = await _queue_tails(pipe, full, max_bytes).execute()
                    return [bytes(v or b"") for v in replies]


def _checked(keys: Sequence[str], max_bytes: int) -> Sequence[str]:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"invalid max_bytes {max_bytes!r}: must be a positive integer")
    return keys


def _queue_append(pipe: Any, full: list[str], record: bytes, px: int | None) -> None:
    """Queue APPEND (+ PEXPIRE) per key on a sync or async pipeline: the part both share."""
    for key in full:
        pipe.append(key, record)
        if px is not None:
            pipe.pexpire(key, px)


def _queue_tails(pipe: Any, full: list[str], max_bytes: int) -> Any:
    """Queue GETRANGE of each log's newest ``max_bytes`` (sync or async pipeline); the pipe."""
    for key in full:
        pipe.getrange(key, -max_bytes, -1)
    return pipe


def _too_long(full: list[str], replies: list[Any], max_bytes: int) -> list[str]:
    """The keys whose log is past twice ``max_bytes`` (APPEND replies the new length)."""
    step = len(replies) // len(full)
    return [k for k, n in zip(full, replies[::step], strict=True) if int(n) > 2 * max_bytes]
