"""Redis lists for chat history: the ``Lists`` capability of the Redis backends.

``list_push`` is ``RPUSH`` + ``LTRIM`` (``max_len``) + ``PEXPIRE`` (``ttl``) in one ``MULTI``: one
key, so one slot on a cluster too; ``list_range`` is ``LRANGE key 0 -1``. A list lives under the
namespaced key like any entry, so ``delete`` and ``clear`` remove it.

Example::

    from llmcache.registry import create_backend

    store = create_backend("redis://localhost:6379/0", namespace="chat")
    store.list_push("session-1", [b"hello", b"hi!"], max_len=50, ttl=3600)
    assert store.list_range("session-1") == [b"hello", b"hi!"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmcache.backends.capabilities import TTL, MaxLen, check_max_len
from llmcache.backends.redis._host import RedisHost

__all__ = ["RedisLists"]


class RedisLists(RedisHost):
    """``list_push`` / ``list_range`` and async twins, mixed into :class:`RedisBackend`."""

    def list_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        """Append ``values`` in one MULTI; keep the newest ``max_len``; renew the list's ttl."""
        max_len, px = check_max_len(max_len), self._px(ttl)
        if not values:
            return
        with (
            self._errors("RPUSH"),
            self._budget(),
            self._client().pipeline(transaction=True) as pipe,
        ):
            _queue_push(pipe, self._key(key), values, max_len, px)
            pipe.execute()

    def list_range(self, key: str) -> list[bytes]:
        """Every element, oldest first; ``[]`` if absent or expired."""
        with self._errors("LRANGE"), self._budget():
            return list(self._client().lrange(self._key(key), 0, -1))

    async def alist_push(
        self, key: str, values: Sequence[bytes], *, max_len: MaxLen = None, ttl: TTL = None
    ) -> None:
        """Async :meth:`list_push`."""
        max_len, px = check_max_len(max_len), self._px(ttl)
        if not values:
            return
        with self._errors("RPUSH"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=True) as pipe:
                    _queue_push(pipe, self._key(key), values, max_len, px)
                    await pipe.execute()

    async def alist_range(self, key: str) -> list[bytes]:
        """Async :meth:`list_range`."""
        with self._errors("LRANGE"):
            async with self._abudget():
                client = await self._aclient()
                return list(await client.lrange(self._key(key), 0, -1))

    def list_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        """:meth:`list_range` of several lists in one pipeline (one round trip per node)."""
        if not keys:
            return []
        with (
            self._errors("LRANGE (pipelined)"),
            self._budget(),
            self._client().pipeline(transaction=False) as pipe,
        ):
            for key in keys:
                pipe.lrange(self._key(key), 0, -1)
            return [list(v) for v in pipe.execute()]

    async def alist_range_many(self, keys: Sequence[str]) -> list[list[bytes]]:
        """Async :meth:`list_range_many`."""
        if not keys:
            return []
        with self._errors("LRANGE (pipelined)"):
            async with self._abudget():
                client = await self._aclient()
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.lrange(self._key(key), 0, -1)
                    return [list(v) for v in await pipe.execute()]


def _queue_push(
    pipe: Any, full: str, values: Sequence[bytes], max_len: int | None, px: int | None
) -> None:
    """Queue RPUSH (+ LTRIM, + PEXPIRE) on a sync or async pipeline: the part both sides share."""
    pipe.rpush(full, *values)
    if max_len is not None:
        pipe.ltrim(full, -max_len, -1)
    if px is not None:
        pipe.pexpire(full, px)
