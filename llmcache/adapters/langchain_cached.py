"""``cached(model)``: a chat model whose every call shape is cached, controlled and visible.

LangChain's global cache (``set_llm_cache``) never sees ``stream()``, cannot take per-call
options and returns hits unmarked. The wrapper does all three, on the same keys and entries::

    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from llmcache.adapters.langchain import cached

    model = cached(GenericFakeChatModel(messages=iter([AIMessage("Paris")])), "memory://")
    first = model.invoke("Capital of France?")
    again = model.invoke("Capital of France?")
    assert again.response_metadata["llmcache"]["hit"] and again.content == first.content

- ``stream``/``astream``: a miss passes chunks through as they arrive and stores the assembled
  answer when the stream completes (not when it is abandoned, cancelled or fails); a hit replays
  the stored answer as several chunks. Streamed and invoked answers serve each other.
- Per-call controls: ``config={"configurable": {"llmcache": {...}}}`` with ``no_cache``,
  ``no_store``, ``refresh``, ``ttl``, ``namespace``, ``max_age`` (see :class:`Controls`).
- Every answer's ``response_metadata["llmcache"]`` says ``hit``, ``age_s``, ``backend``, ``key``.
- Single-flight (default on): concurrent identical misses make one model call, across threads,
  tasks and, through a lease in the store, processes.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from pydantic import ConfigDict, PrivateAttr

from llmcache.adapters import _chunks
from llmcache.backends.base import Backend
from llmcache.cache import Hit, LLMCache
from llmcache.controls import CONFIG_KEY, Controls
from llmcache.singleflight import SingleFlight

__all__ = ["CachedChatModel", "hit_metadata"]

# The keyword that carries a call's controls from invoke()/stream() down to _generate()/_stream().
_CONTROLS = "_llmcache_controls"
KEY_SHOWN = 16  # characters of the cache key shown in the hit flag


def backend_name(cache: LLMCache) -> str:
    """A short name for the store (``redis``, ``momento``, ...), for the hit flag."""
    backend = cache.backend
    tiers = ""
    if isinstance(l2 := getattr(backend, "l2", None), Backend):  # two tiers: name the store
        backend, tiers = l2, "+l1"
    return type(backend).__name__.removesuffix("Backend").lower() + tiers


def hit_metadata(
    cache: LLMCache, hit: bool, key: str | None, age_s: float | None
) -> dict[str, Any]:
    """The ``response_metadata["llmcache"]`` of an answer."""
    return {
        "hit": hit,
        "age_s": None if age_s is None else round(age_s, 3),
        "backend": backend_name(cache),
        "key": None if key is None else key[:KEY_SHOWN],
    }


def _annotated(generations: Sequence[ChatGeneration], meta: dict[str, Any]) -> list[ChatGeneration]:
    """Copies of ``generations`` whose messages carry ``meta`` (the originals are untouched: a
    single-flight leader's answer may be copied for its waiters at the same time)."""
    out = []
    for gen in generations:
        message = gen.message.model_copy(
            update={"response_metadata": {**gen.message.response_metadata, "llmcache": meta}}
        )
        out.append(ChatGeneration(message=message, generation_info=gen.generation_info))
    return out


def _stripped(message: BaseMessage) -> BaseMessage:
    """``message`` without our hit flag (it is never stored)."""
    if "llmcache" not in message.response_metadata:
        return message
    metadata = {k: v for k, v in message.response_metadata.items() if k != "llmcache"}
    return message.model_copy(update={"response_metadata": metadata})


class _Call:
    """One request: its cache identity and controls."""

    __slots__ = ("controls", "key", "llm_string", "prompt")

    def __init__(self, prompt: str, llm_string: str, key: str | None, controls: Controls) -> None:
        self.prompt, self.llm_string, self.key, self.controls = prompt, llm_string, key, controls


class CachedChatModel(BaseChatModel):
    """``model`` behind an llmcache cache; build it with :func:`cached`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: BaseChatModel
    """The wrapped model (called with LangChain's global cache off: this wrapper is its cache)."""
    store: Any
    """The :class:`~llmcache.adapters.langchain.LangChainCache` holding the answers."""
    single_flight: bool = True
    """Concurrent identical misses make one model call."""
    lease_ttl: float | None = None
    """Single-flight: seconds waiters wait for the leader (default: the settings' lease_ttl)."""

    _inner: BaseChatModel = PrivateAttr()
    _flights: dict[str | None, SingleFlight] = PrivateAttr(default_factory=dict)
    _flights_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        # The wrapper must not consult LangChain's global cache (its controls would be bypassed
        # by a hit there), and neither may the model it calls: a shallow copy with cache=False
        # shares the model's clients and settings.
        self.cache = False
        self._inner = self.model.model_copy(update={"cache": False})

    @property
    def llmcache(self) -> LLMCache:
        """The :class:`~llmcache.LLMCache` underneath (stats, clear, close)."""
        return cast(LLMCache, self.store.cache)

    # -- what LangChain asks of a chat model -----------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return f"llmcache-{self.model._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return dict(self.model._identifying_params)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return self.model._get_ls_params(stop=stop, **kwargs)

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The wrapped model's ``bind_tools`` (its tool format), bound to this wrapper."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.model.bind_tools(tools, **kwargs)
        if not isinstance(bound, RunnableBinding):
            raise NotImplementedError(
                f"{type(self.model).__name__}.bind_tools returned {type(bound).__name__}, "
                "not a binding of keyword arguments: cached() cannot pass its tools on"
            )
        return self.bind(**bound.kwargs)

    # -- per-call controls: from the config down to _generate/_stream as a keyword -------------
    @staticmethod
    def _with_controls(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        configurable = (config or {}).get("configurable") or {}
        if CONFIG_KEY in configurable:
            kwargs[_CONTROLS] = Controls.parse(configurable[CONFIG_KEY])
        return kwargs

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return super().invoke(input, config, stop=stop, **self._with_controls(config, kwargs))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return await super().ainvoke(
            input, config, stop=stop, **self._with_controls(config, kwargs)
        )

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        return super().stream(input, config, stop=stop, **self._with_controls(config, kwargs))

    def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        return super().astream(input, config, stop=stop, **self._with_controls(config, kwargs))

    # -- the request ---------------------------------------------------------------------------
    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Call:
        controls = Controls.parse(kwargs.pop(_CONTROLS, None))
        kwargs.pop("ls_structured_output_format", None)
        # The very prompt and llm_string LangChain's global cache uses: both share entries.
        llm_string = self.model._get_llm_string(stop=stop, **kwargs)
        plain = [m.model_copy(update={"id": None}) if m.id is not None else m for m in messages]
        prompt = dumps(plain)
        key = self.llmcache.key(prompt, llm_string) if controls.reads or controls.writes else None
        return _Call(prompt, llm_string, key, controls)

    def _flight(self, namespace: str | None) -> SingleFlight:
        with self._flights_lock:
            flight = self._flights.get(namespace)
            if flight is None:
                cache = self.llmcache
                lease = {} if self.lease_ttl is None else {"lease_ttl": self.lease_ttl}
                flight = SingleFlight(
                    cache.store(namespace),
                    stats=cache.stats,
                    store_failing=cache.store_failing,
                    **lease,
                )
                self._flights[namespace] = flight
            return flight

    def _coalesce(self, call: _Call) -> bool:
        return (
            self.single_flight
            and call.key is not None
            and call.controls.reads
            and call.controls.writes
        )

    def _result(self, hit: Hit | None, call: _Call) -> ChatResult | None:
        if hit is None:
            return None
        generations = self.store._generations(hit.answer)
        if not generations or not all(isinstance(g, ChatGeneration) for g in generations):
            return None  # an LLM's (text) entry under this key: not a chat answer
        meta = hit_metadata(self.llmcache, True, call.key, hit.age_s)
        return ChatResult(generations=_annotated(generations, meta))

    def _miss(self, result: ChatResult, call: _Call) -> ChatResult:
        meta = hit_metadata(self.llmcache, False, call.key, None)
        return ChatResult(
            generations=_annotated(result.generations, meta), llm_output=result.llm_output
        )

    def _flown(self, result: ChatResult, computed: bool, call: _Call) -> ChatResult:
        """What a single-flight caller returns: its own model call's answer (a miss), another
        caller's stored answer (annotated as a hit by the lookup), or the leader's answer
        handed over in-process because it could not be stored (a hit: no call here)."""
        if computed:
            return self._miss(result, call)
        if "llmcache" in result.generations[0].message.response_metadata:
            return result
        meta = hit_metadata(self.llmcache, True, call.key, 0.0)
        return ChatResult(
            generations=_annotated(result.generations, meta), llm_output=result.llm_output
        )

    def _answer(self, generations: Sequence[ChatGeneration]) -> Any:
        plain = [
            ChatGeneration(message=_stripped(g.message), generation_info=g.generation_info)
            for g in generations
        ]
        return self.store._answer(plain)

    # sync
    def _lookup(self, call: _Call, *, peek: bool = False) -> ChatResult | None:
        c = call.controls
        cache = self.llmcache
        get = cache.peek if peek else cache.lookup_hit
        return self._result(
            get(call.prompt, call.llm_string, max_age=c.max_age, namespace=c.namespace), call
        )

    def _store(self, call: _Call, generations: Sequence[ChatGeneration]) -> None:
        answer = self._answer(generations)
        if answer is not None and call.controls.writes and call.key is not None:
            c = call.controls
            self.llmcache.update(
                call.prompt, call.llm_string, answer, ttl=c.ttl, namespace=c.namespace
            )

    def _call_model(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        # No callbacks handed down: an LLM run has no child runs, and the wrapper's own run
        # already reports this call (start, tokens, end) to the caller's handlers.
        result = self._inner.generate([messages], stop=stop, **kwargs)
        generations = cast(list[ChatGeneration], result.generations[0])
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._request(messages, stop, kwargs)
        if call.key is not None and call.controls.reads and (hit := self._lookup(call)):
            return hit
        computed = False

        def compute() -> ChatResult:
            nonlocal computed
            result = self._call_model(messages, stop, run_manager, kwargs)
            computed = True
            if call.controls.writes:
                self._store(call, result.generations)
            return result

        if not self._coalesce(call):
            return self._miss(compute(), call)
        assert call.key is not None
        flight = self._flight(call.controls.namespace)
        result = flight.run(call.key, lambda: self._lookup(call, peek=True), compute)
        return self._flown(result, computed, call)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._request(messages, stop, kwargs)
        if call.key is not None and call.controls.reads and (hit := self._lookup(call)):
            yield from _chunks.replay(hit.generations[0].message)
            return
        chunks: list[BaseMessageChunk] = []
        for item in self._inner.stream(messages, stop=stop, **kwargs):
            for chunk in _chunks.as_chunks(item):
                chunks.append(chunk.message)
                yield chunk
        # Reached only when the model's stream completed: an abandoned, cancelled or failed
        # stream stores nothing (GeneratorExit or the model's exception leave at the yield).
        yield self._stream_end(call, chunks)

    def _stream_end(self, call: _Call, chunks: list[BaseMessageChunk]) -> ChatGenerationChunk:
        answer = _chunks.assemble(chunks)
        if answer is not None and call.controls.writes and call.key is not None:
            self._store(call, [answer])
        return self._flag_chunk(call)

    def _flag_chunk(self, call: _Call) -> ChatGenerationChunk:
        meta = hit_metadata(self.llmcache, False, call.key, None)
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"llmcache": meta})
        )

    # async
    async def _alookup(self, call: _Call, *, peek: bool = False) -> ChatResult | None:
        c = call.controls
        cache = self.llmcache
        get = cache.apeek if peek else cache.alookup_hit
        hit = await get(call.prompt, call.llm_string, max_age=c.max_age, namespace=c.namespace)
        return self._result(hit, call)

    async def _astore(self, call: _Call, generations: Sequence[ChatGeneration]) -> None:
        answer = self._answer(generations)
        if answer is not None and call.controls.writes and call.key is not None:
            c = call.controls
            await self.llmcache.aupdate(
                call.prompt, call.llm_string, answer, ttl=c.ttl, namespace=c.namespace
            )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._request(messages, stop, kwargs)
        if call.key is not None and call.controls.reads and (hit := await self._alookup(call)):
            return hit
        computed = False

        async def compute() -> ChatResult:
            nonlocal computed
            result = await self._inner.agenerate([messages], stop=stop, **kwargs)
            computed = True
            generations = cast(list[ChatGeneration], result.generations[0])
            if call.controls.writes:
                await self._astore(call, generations)
            return ChatResult(generations=generations, llm_output=result.llm_output)

        if not self._coalesce(call):
            return self._miss(await compute(), call)
        assert call.key is not None
        flight = self._flight(call.controls.namespace)
        result = await flight.arun(call.key, lambda: self._alookup(call, peek=True), compute)
        return self._flown(result, computed, call)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._request(messages, stop, kwargs)
        if call.key is not None and call.controls.reads and (hit := await self._alookup(call)):
            for chunk in _chunks.replay(hit.generations[0].message):
                yield chunk
            return
        chunks: list[BaseMessageChunk] = []
        async for item in self._inner.astream(messages, stop=stop, **kwargs):
            for chunk in _chunks.as_chunks(item):
                chunks.append(chunk.message)
                yield chunk
        answer = _chunks.assemble(chunks)
        if answer is not None and call.controls.writes and call.key is not None:
            await self._astore(call, [answer])
        yield self._flag_chunk(call)
