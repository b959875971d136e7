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

With metrics on (:mod:`llmcache.metrics`), a chat hit reports the tokens it saved (the stored
message's ``usage_metadata``) under the model its ``response_metadata`` names.

The other LangChain adapters live in their own modules and are re-exported here:
:class:`LangChainByteStore` (a ``ByteStore``, for ``CacheBackedEmbeddings``) and
:class:`LangChainChatHistory` (a ``BaseChatMessageHistory``, for ``RunnableWithMessageHistory``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, Self

import orjson
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGeneration, Generation
from pydantic import BaseModel

from llmcache.adapters._generations import generations_from_json, generations_to_json
from llmcache.adapters.langchain_cached import CachedChatModel, hit_metadata
from llmcache.adapters.langchain_history import LangChainChatHistory
from llmcache.adapters.langchain_store import LangChainByteStore
from llmcache.cache import LLMCache
from llmcache.config import Settings
from llmcache.metrics._observer import Usage
from llmcache.requestlog import RequestRecorder
from llmcache.singleflight import Lease, SingleFlight

__all__ = [
    "CachedChatModel",
    "LangChainByteStore",
    "LangChainCache",
    "LangChainChatHistory",
    "cached",
]

log = logging.getLogger("llmcache")
_LEASES_KEPT = 10_000  # leases held for an update to come (leaders whose model failed fall off)


class LangChainCache(BaseCache):
    """LangChain ``BaseCache`` backed by an :class:`~llmcache.LLMCache` (native async).

    ``record_to``: append every request to this JSONL request log (for ``llmcache replay``).
    The log contains prompt text: store and share it as you would the prompts.
    ``annotate_hits``: a chat hit's message carries ``response_metadata["llmcache"]`` (hit, age,
    backend, key), as :func:`cached` answers do. Off by default: a hit is then exactly what was
    stored (LangChain's own cache tests compare them).
    ``single_flight``: concurrent identical misses make one model call through a lease in the
    store (off by default here: LangChain looks up and stores in separate calls, so a leader
    whose model call fails holds the others until the lease expires, ``lease_ttl`` seconds;
    :func:`cached` has no such wait).
    """

    def __init__(
        self,
        cache: LLMCache,
        *,
        record_to: str | os.PathLike[str] | None = None,
        annotate_hits: bool = False,
        single_flight: bool = False,
        lease_ttl: float | None = None,
    ) -> None:
        self.cache = cache
        self.annotate_hits = annotate_hits
        self._flight: SingleFlight | None = None
        if single_flight:
            lease = {} if lease_ttl is None else {"lease_ttl": lease_ttl}
            self._flight = SingleFlight(
                cache.backend, stats=cache.stats, store_failing=cache.store_failing, **lease
            )
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._leases_lock = threading.Lock()
        if cache.materialize is None:
            # Generations are rebuilt (and validated) from the stored JSON; a value read again
            # is memoised by the cache as an _Answer, which gives every hit objects of its own,
            # so callers may change what they receive.
            cache.materialize, cache.share = generations_from_json, _Answer
        if cache.usage_of is None:  # read by the metrics only, on hits
            cache.usage_of = _hit_usage
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
        cls,
        settings: Settings | None = None,
        *,
        record_to: str | os.PathLike[str] | None = None,
        embeddings: Any = None,
    ) -> Self:
        """Cache configured by :class:`~llmcache.Settings` (``LLMCACHE_*``, .env, TOML).

        ``record_to`` defaults to the ``record_to`` setting (``LLMCACHE_RECORD_TO``);
        ``single_flight`` and ``lease_ttl`` are the settings' (off unless
        ``LLMCACHE_SINGLE_FLIGHT=true``); ``embeddings`` turns the semantic layer on.
        """
        from llmcache.config import load_settings

        settings = settings or load_settings()
        return cls(
            LLMCache.from_settings(settings, embeddings=embeddings),
            record_to=record_to or settings.record_to,
            single_flight=bool(settings.single_flight),
            lease_ttl=settings.lease_ttl,
        )

    @property
    def stats(self) -> dict[str, Any]:
        """Hits, misses, bypasses, errors, bytes and latency of this cache."""
        return self.cache.stats.as_dict()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if self.annotate_hits:
            hit = self._annotated(self.cache.lookup_hit(prompt, llm_string), prompt, llm_string)
        else:
            hit = self._generations(self.cache.lookup(prompt, llm_string))
            if hit is not None and self.recorder is not None:
                self.recorder.record(prompt, llm_string, _usage(hit), hit=True)
        if hit is None and self._flight is not None and (key := self.cache.key(prompt, llm_string)):
            value, lease = self._flight.claim(key, lambda: self._peek(prompt, llm_string))
            return self._claimed(key, value, lease)
        return hit

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.recorder is not None:  # a miss or bypass: LangChain called the model
            self.recorder.record(prompt, llm_string, _usage(return_val), hit=False)
        answer = self._answer(return_val)
        if answer is not None:
            self.cache.update(prompt, llm_string, answer)
        if self._flight is not None and (lease := self._lease_of(prompt, llm_string)):
            self._flight.release(lease[0], lease[1])

    def _peek(self, prompt: str, llm_string: str) -> list[Generation] | None:
        found = self.cache.peek(prompt, llm_string)
        return None if found is None else self._generations(found.answer)

    async def _apeek(self, prompt: str, llm_string: str) -> list[Generation] | None:
        found = await self.cache.apeek(prompt, llm_string)
        return None if found is None else self._generations(found.answer)

    def _claimed(
        self, key: str, value: list[Generation] | None, lease: Lease | None
    ) -> list[Generation] | None:
        """Another caller's answer (a hit), or None with our lease kept for ``update``."""
        if value is not None:
            if self.annotate_hits:
                return _marked(value, hit_metadata(self.cache, True, key, 0.0))
            return value
        if lease is not None and lease.token is not None:
            with self._leases_lock:
                self._leases[key] = lease
                if len(self._leases) > _LEASES_KEPT:  # leaders whose model call failed
                    self._leases.popitem(last=False)
        return None

    def _lease_of(self, prompt: str, llm_string: str) -> tuple[str, Lease] | None:
        key = self.cache.key(prompt, llm_string)
        if key is None:
            return None
        with self._leases_lock:
            lease = self._leases.pop(key, None)
        return None if lease is None else (key, lease)

    def clear(self, **kwargs: Any) -> None:
        self.cache.clear()

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if self.annotate_hits:
            found = await self.cache.alookup_hit(prompt, llm_string)
            hit = self._annotated(found, prompt, llm_string)
        else:
            hit = self._generations(await self.cache.alookup(prompt, llm_string))
            if hit is not None and self.recorder is not None:
                self.recorder.record(prompt, llm_string, _usage(hit), hit=True)
        if hit is None and self._flight is not None and (key := self.cache.key(prompt, llm_string)):
            value, lease = await self._flight.aclaim(key, lambda: self._apeek(prompt, llm_string))
            return self._claimed(key, value, lease)
        return hit

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.recorder is not None:
            self.recorder.record(prompt, llm_string, _usage(return_val), hit=False)
        answer = self._answer(return_val)
        if answer is not None:
            await self.cache.aupdate(prompt, llm_string, answer)
        if self._flight is not None and (lease := self._lease_of(prompt, llm_string)):
            await self._flight.arelease(lease[0], lease[1])

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

    def _annotated(self, found: Any, prompt: str, llm_string: str) -> list[Generation] | None:
        hit = None if found is None else self._generations(found.answer)
        if hit is None:
            return None
        if self.recorder is not None:
            self.recorder.record(prompt, llm_string, _usage(hit), hit=True)
        return _marked(hit, hit_metadata(self.cache, True, found.key, found.age_s))

    def _generations(self, answer: Any) -> list[Generation] | None:
        if answer is None:
            return None
        if isinstance(answer, _Answer):  # memoised: shared by the hits of the same bytes
            return answer.fresh()
        if self.cache.materialize is generations_from_json:  # built for this hit alone
            return answer  # type: ignore[no-any-return]
        try:  # the cache was given another materializer: plain JSON, decoded afresh per hit
            return generations_from_json(answer)
        except Exception as exc:
            # Written by a foreign or broken client: a miss, never a wrong answer.
            self.cache.stats.incr("decode_errors")
            log.debug("llmcache: cached generations do not decode: %s", exc)
            return None

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


class _Answer:
    """One stored answer, decoded and validated once, shared by the cache's memo between hits.

    Every hit gets objects of its own: LangChain reassigns ``generation.message`` on a hit, and a
    caller may edit ``tool_calls[0]["args"]``, content blocks or ``response_metadata`` in place;
    neither may change what the next caller of the same request gets. So the generations are
    frozen (:class:`_Frozen`) when they are built, and each later hit thaws fresh objects from
    that. The first hit takes the objects that were just built: nobody else has seen them.
    """

    __slots__ = ("_first", "_frozen", "_usage")

    def __init__(self, generations: list[Generation]) -> None:
        self._frozen = _Frozen(generations)  # before anyone can change them
        self._first = [generations]
        self._usage: Usage | Literal[False] | None = False  # False: not read yet

    def fresh(self) -> list[Generation]:
        """Generations no other caller holds (the first call gets the ones built at decode)."""
        try:
            return self._first.pop()  # atomic: of two threads, one gets them, one thaws
        except IndexError:
            return self._frozen.thaw()

    def usage(self) -> Usage | None:
        """What a hit on this answer saves (metrics only: computed at the first ask)."""
        if self._usage is False:
            # From a thawed copy: the generations built first may be in a caller's hands.
            self._usage = _saved(self._frozen.thaw())
        return self._usage


#: orjson refuses (instead of silently converting) what would not thaw into the same types.
_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
_EXACT |= orjson.OPT_PASSTHROUGH_DATETIME
_CONTAINERS = (dict, list)  # a tuple: isinstance with it is faster than with dict | list
_ATOMS = frozenset({str, int, float, bool, type(None)})


class _Frozen:
    """Pydantic models (generations and their messages), thawed into equal, independent ones.

    As ``model_copy(deep=True)`` for JSON-shaped fields: dicts and lists (tool calls, content
    blocks, metadata, extra fields) are fresh in every thawed model; other values (text, ids,
    numbers) are immutable and shared. The containers of all the models are kept as one JSON
    document and thawed by one ``orjson.loads`` (~4x cheaper than copying them in Python), but
    only when that gives back exactly the same values (``==`` after the round trip: tuples, NaN,
    subclasses and other non-JSON values fail it); otherwise they are copied container by
    container (:func:`_deep`).
    """

    __slots__ = ("blob", "plan", "roots", "states")

    def __init__(self, models: list[Generation]) -> None:
        #: per model: class, shared fields, fields set, private, (field, index) of nested models
        self.plan: list[tuple[Any, dict[str, Any], frozenset[str], Any, tuple[Any, ...]]] = []
        states: list[Any] = []
        self.roots = [self._add(m, states) for m in models]
        self.blob: bytes | None = None
        self.states: list[Any] = []
        try:
            blob = orjson.dumps(states, option=_EXACT)
            if orjson.loads(blob) == states:
                self.blob = blob
        except (TypeError, ValueError):  # orjson.JSONEncodeError: not JSON-shaped
            pass
        if self.blob is None:
            self.states = _deep(states)  # a copy: the models handed out may be changed in place

    def _add(self, model: BaseModel, states: list[Any]) -> int:
        index = len(self.plan)
        self.plan.append(None)  # type: ignore[arg-type]  # filled below, after nested models
        states.append(None)
        nested: list[tuple[str, int]] = []
        kept: dict[str, Any] = {}
        # Fields not in the document keep their place in the field order (a None placeholder).
        fields: dict[str, Any] = {}
        for name, value in model.__dict__.items():
            if isinstance(value, _CONTAINERS):
                fields[name] = value
                continue
            if type(value) not in _ATOMS and isinstance(value, BaseModel):
                nested.append((name, self._add(value, states)))
            else:
                kept[name] = value
            fields[name] = None
        states[index] = [fields, model.__pydantic_extra__]
        private = model.__pydantic_private__
        self.plan[index] = (
            type(model),
            kept,
            frozenset(model.__pydantic_fields_set__),
            None if private is None else dict(private),
            tuple(nested),
        )
        return index

    def thaw(self) -> list[Any]:
        states = orjson.loads(self.blob) if self.blob is not None else _deep(self.states)
        models: list[Any] = [None] * len(self.plan)
        setattr_ = object.__setattr__
        for index in range(len(self.plan) - 1, -1, -1):  # nested models come after their parent
            cls, kept, fields_set, private, nested = self.plan[index]
            fields, extra = states[index]
            fields.update(kept)  # same keys: the field order stays
            for name, child in nested:
                fields[name] = models[child]
            new = cls.__new__(cls)
            setattr_(new, "__dict__", fields)
            setattr_(new, "__pydantic_fields_set__", set(fields_set))
            setattr_(new, "__pydantic_extra__", extra)
            setattr_(new, "__pydantic_private__", None if private is None else dict(private))
            models[index] = new
        return [models[i] for i in self.roots]


def _marked(hit: list[Generation], meta: dict[str, Any]) -> list[Generation]:
    """``hit`` with the hit flag on its chat messages (fresh objects of this hit alone: changed
    in place)."""
    for gen in hit:
        if isinstance(gen, ChatGeneration):
            gen.message.response_metadata = {**gen.message.response_metadata, "llmcache": meta}
    return hit


def _deep(value: Any) -> Any:
    """A copy of a JSON-shaped value: dicts and lists copied all the way down."""
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


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


def _saved(generations: Sequence[Generation]) -> Usage | None:
    """(model, input tokens, output tokens) of an answer, as :func:`_usage` reads them; the
    model is the one the provider named in ``response_metadata`` (``unknown`` without)."""
    usage = _usage(generations)
    if usage is None:
        return None
    model = "unknown"
    for gen in generations:
        meta = getattr(getattr(gen, "message", None), "response_metadata", None)
        if isinstance(meta, dict):
            name = meta.get("model_name") or meta.get("model")
            if isinstance(name, str) and name:
                model = name
                break
    return model, usage["input_tokens"], usage["output_tokens"]


def _hit_usage(answer: Any) -> Usage | None:
    """What a hit saved (``LLMCache.usage_of``): its answer is generations, or a memoised
    :class:`_Answer`; anything else (another materializer's answers) is None."""
    if isinstance(answer, _Answer):
        return answer.usage()
    if isinstance(answer, list):
        return _saved(answer)
    return None


def cached(
    model: BaseChatModel,
    url: str | None = None,
    *,
    cache: LangChainCache | LLMCache | None = None,
    single_flight: bool | None = None,
    lease_ttl: float | None = None,
    settings: Settings | None = None,
    embeddings: Any = None,
    **options: Any,
) -> CachedChatModel:
    """``model`` as a chat model whose invoke, stream, batch and async calls are cached.

    The store: ``cache`` (share one with the global ``LangChainCache``), else the backend
    ``url`` names (``options`` as for :meth:`LangChainCache.from_url`), else settings
    (``LLMCACHE_*``). Entries are shared with the global cache on the same store and namespace:
    same prompt, same llm_string, same key. ``single_flight`` (default: the ``single_flight``
    setting, on when unset) makes concurrent identical misses one model call; ``lease_ttl``
    bounds how long callers wait for another's call.
    ``embeddings`` turns the semantic layer on (with ``url``: the same as
    ``semantic={"embeddings": ...}``; with settings: configured by ``LLMCACHE_SEMANTIC__*``).
    """
    from llmcache.config import load_settings

    if cache is not None and (url is not None or options):
        raise TypeError("cached(): give either cache= or a url with options, not both")
    if isinstance(cache, LangChainCache):
        store = cache
    elif isinstance(cache, LLMCache):
        store = LangChainCache(cache)
    elif url is not None:
        if embeddings is not None:
            options["semantic"] = {**options.get("semantic", {}), "embeddings": embeddings}
        store = LangChainCache.from_url(url, **options)
    else:
        if options:
            raise TypeError(f"cached(): options {sorted(options)} need a url")
        settings = settings or load_settings()
        store = LangChainCache.from_settings(settings, embeddings=embeddings)
        single_flight = settings.single_flight if single_flight is None else single_flight
        lease_ttl = settings.lease_ttl if lease_ttl is None else lease_ttl
    return CachedChatModel(
        model=model,
        store=store,
        single_flight=True if single_flight is None else single_flight,
        lease_ttl=lease_ttl,
    )
