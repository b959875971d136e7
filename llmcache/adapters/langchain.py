"""LangChain adapter: an ``llmcache`` cache as LangChain's LLM cache.

Example::

    from langchain_core.globals import set_llm_cache
    from llmcache.adapters.langchain import LangChainCache

    set_llm_cache(LangChainCache.from_url("disk:///tmp/llm"))   # or LangChainCache.from_settings()

Every chat model and LLM call is then cached, sync and async. A chat hit is the model's own
``ChatGeneration``: the ``AIMessage`` keeps content, tool calls, usage and response metadata.
Store faults become misses (the model is called), never exceptions in the caller's call.

``record_to=path`` also appends every request (hits, misses and bypasses, with token usage) to a
JSONL request log for ``llmcache replay`` (see docs/replay.md). The log holds prompt text.

The other LangChain adapters live in their own modules and are re-exported here:
:class:`LangChainByteStore` (a ``ByteStore``, for ``CacheBackedEmbeddings``) and
:class:`LangChainChatHistory` (a ``BaseChatMessageHistory``, for ``RunnableWithMessageHistory``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Self, TypeVar

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.outputs import Generation
from pydantic import BaseModel

from llmcache.adapters._generations import generations_from_json, generations_to_json
from llmcache.adapters.langchain_history import LangChainChatHistory
from llmcache.adapters.langchain_store import LangChainByteStore
from llmcache.cache import LLMCache
from llmcache.config import Settings
from llmcache.requestlog import RequestRecorder

__all__ = ["LangChainByteStore", "LangChainCache", "LangChainChatHistory"]

log = logging.getLogger("llmcache")
M = TypeVar("M", bound=BaseModel)


class LangChainCache(BaseCache):
    """LangChain ``BaseCache`` backed by an :class:`~llmcache.LLMCache` (native async).

    ``record_to``: append every request to this JSONL request log (for ``llmcache replay``).
    The log contains prompt text: store and share it as you would the prompts.
    """

    def __init__(self, cache: LLMCache, *, record_to: str | os.PathLike[str] | None = None) -> None:
        self.cache = cache
        if cache.materialize is None:
            # Generations are rebuilt once per stored value (the cache memoises them); every
            # hit then gets its own copies, so callers may change what they receive.
            cache.materialize = generations_from_json
        self.recorder = RequestRecorder(record_to) if record_to is not None else None

    @classmethod
    def from_url(
        cls, url: str, *, record_to: str | os.PathLike[str] | None = None, **options: Any
    ) -> Self:
        """Cache on the backend named by ``url`` (see :meth:`LLMCache.from_url` for options).

        Secrets as in :meth:`llmcache.LLMCache.from_url`: the URL or keywords here; the
        environment (``LLMCACHE_REDIS_PASSWORD``, ``LLMCACHE_MOMENTO_API_KEY``) via
        ``from_settings``.
        """
        return cls(LLMCache.from_url(url, **options), record_to=record_to)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, record_to: str | os.PathLike[str] | None = None
    ) -> Self:
        """Cache configured by :class:`~llmcache.Settings` (``LLMCACHE_*``, .env, TOML).

        ``record_to`` defaults to the ``record_to`` setting (``LLMCACHE_RECORD_TO``).
        """
        from llmcache.config import load_settings

        settings = settings or load_settings()
        return cls(LLMCache.from_settings(settings), record_to=record_to or settings.record_to)

    @property
    def stats(self) -> dict[str, Any]:
        """Hits, misses, bypasses, errors, bytes and latency of this cache."""
        return self.cache.stats.as_dict()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        hit = self._generations(self.cache.lookup(prompt, llm_string))
        if hit is not None and self.recorder is not None:
            self.recorder.record(prompt, llm_string, _usage(hit), hit=True)
        return hit

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.recorder is not None:  # a miss or bypass: LangChain called the model
            self.recorder.record(prompt, llm_string, _usage(return_val), hit=False)
        answer = self._answer(return_val)
        if answer is not None:
            self.cache.update(prompt, llm_string, answer)

    def clear(self, **kwargs: Any) -> None:
        self.cache.clear()

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        hit = self._generations(await self.cache.alookup(prompt, llm_string))
        if hit is not None and self.recorder is not None:
            self.recorder.record(prompt, llm_string, _usage(hit), hit=True)
        return hit

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.recorder is not None:
            self.recorder.record(prompt, llm_string, _usage(return_val), hit=False)
        answer = self._answer(return_val)
        if answer is not None:
            await self.cache.aupdate(prompt, llm_string, answer)

    async def aclear(self, **kwargs: Any) -> None:
        await self.cache.aclear()

    def close(self) -> None:
        """Close the underlying store (and the request log)."""
        if self.recorder is not None:
            self.recorder.close()
        self.cache.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self.recorder is not None:
            self.recorder.close()
        await self.cache.aclose()

    def _generations(self, answer: Any) -> list[Generation] | None:
        if answer is None:
            return None
        if self.cache.materialize is not generations_from_json:
            try:
                answer = generations_from_json(answer)
            except Exception as exc:
                # Written by a foreign or broken client: a miss, never a wrong answer.
                self.cache.stats.incr("decode_errors")
                log.debug("llmcache: cached generations do not decode: %s", exc)
                return None
        return [_copy(g) for g in answer]

    def _answer(self, generations: Sequence[Generation]) -> list[dict[str, Any]] | None:
        try:
            answer = generations_to_json(list(generations))
            # An empty answer could never be served (a hit needs a generation): don't store it.
            return answer or None
        except Exception as exc:  # an odd generation type, or a model_dump that fails
            self.cache.unstorable(exc)
            return None

    def __repr__(self) -> str:
        return f"LangChainCache({self.cache!r})"


def _copy(generation: Generation) -> Generation:
    """A fresh generation (and message) whose lists and dicts are fresh too.

    Every hit gets its own objects: LangChain reassigns ``generation.message`` on a hit, and a
    caller may edit ``tool_calls[0]["args"]``, content blocks or ``response_metadata`` in place;
    neither may change what the next caller of the same request gets. Copying the JSON-shaped
    containers costs a few us where rebuilding the pydantic objects costs ~25 us.
    """
    message = getattr(generation, "message", None)
    copied = _isolated(generation)
    if message is not None:
        copied.__dict__["message"] = _isolated(message)
    return copied


def _deep(value: Any) -> Any:
    """A copy of a JSON-shaped value: dicts and lists copied all the way down."""
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


def _isolated(model: M) -> M:
    """``model.model_copy(deep=True)`` for our JSON-shaped fields, without pydantic's cost."""
    new = model.__class__.__new__(model.__class__)
    fields = {
        k: _deep(v) if isinstance(v, dict | list) else v for k, v in model.__dict__.items()
    }
    object.__setattr__(new, "__dict__", fields)
    object.__setattr__(new, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    extra, private = model.__pydantic_extra__, model.__pydantic_private__
    object.__setattr__(new, "__pydantic_extra__", None if extra is None else dict(extra))
    object.__setattr__(new, "__pydantic_private__", None if private is None else dict(private))
    return new


def _usage(generations: Sequence[Generation]) -> dict[str, int] | None:
    """Token usage of an answer: the first chat message's ``usage_metadata`` (when n > 1,
    providers repeat the call's total on every generation, so it is not summed)."""
    try:
        for gen in generations:
            usage = getattr(getattr(gen, "message", None), "usage_metadata", None)
            if usage:
                return {
                    "input_tokens": int(usage.get("input_tokens", 0)),
                    "output_tokens": int(usage.get("output_tokens", 0)),
                }
    except Exception:  # odd usage objects: the request is still recorded, without tokens
        return None
    return None
