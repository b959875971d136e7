"""LangChain adapter: an ``llmcache`` cache as LangChain's LLM cache.

Example::

    from langchain_core.globals import set_llm_cache
    from llmcache.adapters.langchain import LangChainCache

    set_llm_cache(LangChainCache.from_url("disk:///tmp/llm"))   # or LangChainCache.from_settings()

Every chat model and LLM call is then cached, sync and async. A chat hit is the model's own
``ChatGeneration``: the ``AIMessage`` keeps content, tool calls, usage and response metadata.
Store faults become misses (the model is called), never exceptions in the caller's call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.outputs import Generation

from llmcache.adapters._generations import generations_from_json, generations_to_json
from llmcache.cache import LLMCache
from llmcache.config import Settings
from llmcache.errors import CodecError

__all__ = ["LangChainCache"]

log = logging.getLogger("llmcache")


class LangChainCache(BaseCache):
    """LangChain ``BaseCache`` backed by an :class:`~llmcache.LLMCache` (native async)."""

    def __init__(self, cache: LLMCache) -> None:
        self.cache = cache

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Cache on the backend named by ``url`` (see :meth:`LLMCache.from_url` for options)."""
        return cls(LLMCache.from_url(url, **options))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Self:
        """Cache configured by :class:`~llmcache.Settings` (``LLMCACHE_*``, .env, TOML)."""
        return cls(LLMCache.from_settings(settings))

    @property
    def stats(self) -> dict[str, Any]:
        """Hits, misses, bypasses, errors, bytes and latency of this cache."""
        return self.cache.stats.as_dict()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self._generations(self.cache.lookup(prompt, llm_string))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        answer = self._answer(return_val)
        if answer is not None:
            self.cache.update(prompt, llm_string, answer)

    def clear(self, **kwargs: Any) -> None:
        self.cache.clear()

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        return self._generations(await self.cache.alookup(prompt, llm_string))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        answer = self._answer(return_val)
        if answer is not None:
            await self.cache.aupdate(prompt, llm_string, answer)

    async def aclear(self, **kwargs: Any) -> None:
        await self.cache.aclear()

    def close(self) -> None:
        """Close the underlying store."""
        self.cache.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.cache.aclose()

    def _generations(self, answer: Any) -> list[Generation] | None:
        if answer is None:
            return None
        try:
            return generations_from_json(answer)
        except CodecError as exc:
            # Written by a foreign or broken client: a miss, never a wrong answer or a crash.
            self.cache.stats.incr("decode_errors")
            log.debug("llmcache: cached generations do not decode: %s", exc)
            return None

    def _answer(self, generations: Sequence[Generation]) -> list[dict[str, Any]] | None:
        try:
            return generations_to_json(list(generations))
        except (CodecError, ValueError, TypeError) as exc:
            log.warning("llmcache: not caching an answer that does not serialise: %s", exc)
            return None

    def __repr__(self) -> str:
        return f"LangChainCache({self.cache!r})"
