"""The cache: key policy + codec + backend + stats + failure policy, sync and async.

Example::

    from llmcache import LLMCache

    cache = LLMCache.from_url("memory://", ttl=3600)
    cache.update("What is 2+2?", "[('_type', 'fake')]", [{"text": "4"}])
    assert cache.lookup("What is 2+2?", "[('_type', 'fake')]") == [{"text": "4"}]

An *answer* is any JSON value (the LangChain adapter stores a list of generations). Under the
``sample:k`` temperature mode a key keeps up to k answers and serves them in turn.

Metrics and traces (:mod:`llmcache.metrics`) cost one attribute check per call while off:
``_observer`` is None until an exporter is attached to the cache (or to every cache).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from llmcache import _defaults
from llmcache._breaker import CircuitBreaker
from llmcache._guard import Guard, OnError, as_fault, check_ttl
from llmcache._update import Update
from llmcache.backends.base import Backend, field_error
from llmcache.backends.tiered import with_l1
from llmcache.codec import Codec, written_at
from llmcache.config import L1Settings, Settings, encryption_keys, load_settings
from llmcache.errors import ConfigError
from llmcache.keys import KeyDecision, KeyPolicy
from llmcache.metrics._observer import Hub, Usage, register
from llmcache.registry import backend_from_settings, create_backend
from llmcache.stats import Stats

if TYPE_CHECKING:
    from llmcache.semantic import SemanticLayer

__all__ = ["DEFAULT_TTL", "Hit", "LLMCache", "OnError"]

log = logging.getLogger("llmcache")

DEFAULT_TTL = _defaults.TTL
_SAMPLE_TURNS_KEPT = 10_000  # keys whose round-robin position we remember (bounded memory)
# Decoded answers kept per key, reused while the store returns the very same bytes: a repeated
# hit then skips decompression, JSON parsing and object construction (a third of a local hit).
_MEMO_ENTRIES = 1024
_MEMO_MAX_VALUE = 64 * 1024  # bytes; bigger values are decoded every time
# After a lookup fails, the same request's update (made once the model answered) is skipped:
# a sick store then costs a call one timeout, not two. Remembered this long, at most this many.
_FAILED_LOOKUP_SECONDS = 120.0
_FAILED_LOOKUPS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Hit:
    """A cached answer and what is known of it."""

    answer: Any
    key: str  # the cache key (relative to the namespace)
    age_s: float | None  # seconds since it was written; None for values without a write time


class LLMCache:
    """Caches LLM answers in a backend; never makes the caller's call fail (by default)."""

    def __init__(
        self,
        backend: Backend,
        *,
        policy: KeyPolicy | None = None,
        codec: Codec | None = None,
        ttl: float | None = DEFAULT_TTL,
        on_error: OnError = "miss",
        breaker: CircuitBreaker | None = None,
        materialize: Callable[[Any], Any] | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy or KeyPolicy()
        self.codec = codec or Codec()
        self.ttl = check_ttl(ttl)
        #: The failure policy: breaker, fault log, stats and on_error in one place.
        self.guard = Guard(backend, on_error=on_error, breaker=breaker, stats=Stats())
        self.on_error = self.guard.on_error
        self.breaker = self.guard.breaker
        self.stats = self.guard.stats
        self._turns: OrderedDict[str, int] = OrderedDict()
        self._turns_lock = threading.Lock()
        #: Turns a stored JSON answer into what ``lookup`` returns (the LangChain adapter sets
        #: it to rebuild generations); it raises :class:`CodecError` for answers it rejects.
        self.materialize = materialize
        #: Makes a materialized answer safe to hand to several lookups (the memo keeps it for
        #: the next reads of the same bytes); without it the memo hands out what
        #: ``materialize`` returned, and its consumer must copy what it gives out.
        self.share: Callable[[Any], Any] | None = None
        self._memo: OrderedDict[str, tuple[bytes, list[Any] | None]] = OrderedDict()
        self._memo_lock = threading.Lock()
        self._failed_lookups: OrderedDict[str, float] = OrderedDict()
        #: What a hit saved, from a materialized answer: (model, input tokens, output tokens)
        #: or None (the LangChain adapter sets it); read only while metrics are on.
        self.usage_of: Callable[[Any], Usage | None] | None = None
        #: The metrics/traces exporters this cache reports to; None while none is on.
        self._observer: Hub | None = None
        #: The opt-in semantic layer (:meth:`enable_semantic`): consulted on exact misses only.
        self.semantic: SemanticLayer | None = None
        register(self)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "default",
        ttl: float | None = DEFAULT_TTL,
        policy: KeyPolicy | None = None,
        on_error: OnError = "miss",
        compress_min_bytes: int | None = _defaults.COMPRESS_MIN_BYTES,
        encryption_key: str | None = None,
        l1: L1Settings | Mapping[str, Any] | bool | None = None,
        semantic: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """Build a cache on the backend named by ``url``; ``options`` go to the backend.

        Where secrets come from: ``from_url`` reads no environment variable. A Redis password
        is the URL's (``redis://user:password@host``, percent-encoded) or the ``password=``
        keyword (``username=`` for an ACL user); a Momento API key is never in the URL: pass
        ``api_key=``. To take them from the environment, ``.env`` or ``llmcache.toml``
        instead (``LLMCACHE_REDIS_PASSWORD``, ``LLMCACHE_REDIS_USERNAME``,
        ``LLMCACHE_MOMENTO_API_KEY`` or ``MOMENTO_API_KEY``), use ``from_settings``.
        Messages and ``repr`` never show a password (see :func:`llmcache.registry.redact_url`).

        ``l1``: an in-process first tier in front of the store (``True``, or
        ``{"max_entries": ..., "ttl": ...}``; see docs/two-tiers.md). ``semantic``: paraphrases
        served on exact misses, ``{"embeddings": <LangChain Embeddings>, "threshold": 0.85, ...}``
        (see :meth:`enable_semantic` and docs/semantic.md).
        """
        backend = with_l1(create_backend(url, namespace=namespace, **options), l1)
        cache = cls(
            backend,
            policy=policy,
            codec=Codec(
                compress_min_bytes=compress_min_bytes,
                encryption_keys=[encryption_key] if encryption_key else (),
            ),
            ttl=ttl,
            on_error=on_error,
        )
        if semantic is not None:
            spec = dict(semantic)
            cache.enable_semantic(spec.pop("embeddings", None), **spec)
        return cache

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, embeddings: Any = None) -> Self:
        """Build a cache from :class:`Settings` (read from env/files when not given).

        ``embeddings`` (a LangChain ``Embeddings``) turns the semantic layer on, configured by
        the ``semantic`` settings (``LLMCACHE_SEMANTIC__THRESHOLD``, ...): an embeddings
        object cannot come from a setting.
        """
        settings = settings or load_settings()
        # LLMCACHE_METRICS=otel,prometheus: turned on for every cache (idempotent).
        metrics = settings.metrics
        if metrics:
            from llmcache.metrics import enable

            enable(metrics)
        backend = with_l1(backend_from_settings(settings), settings.l1)
        policy = KeyPolicy(
            temperature=settings.key.temperature,
            version=settings.key.version,
            ignore_params=frozenset(settings.key.ignore_params),
        )
        cache = cls(
            backend,
            policy=policy,
            codec=Codec(
                compress_min_bytes=settings.compress_min_bytes,
                encryption_keys=encryption_keys(settings),
                max_decoded_bytes=settings.max_decoded_bytes,
            ),
            ttl=settings.ttl,
            on_error=settings.on_error,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown),
        )
        if embeddings is not None:
            cache.enable_semantic(embeddings, **(settings.semantic or {}))
        elif settings.semantic:
            raise ConfigError(
                "semantic settings are set (LLMCACHE_SEMANTIC__*) but no embeddings were given: "
                "pass embeddings= to from_settings (a LangChain Embeddings object)"
            )
        return cache

    def enable_semantic(self, embeddings: Any, **config: Any) -> SemanticLayer:
        """Serve paraphrases on exact misses: an LSH index in this cache's own store.

        ``embeddings``: any LangChain ``Embeddings``; ``config``: :class:`SemanticConfig`
        fields (``threshold``, ``guards``, ``tables``, ...). Only the default namespace (not a
        per-call one) and one-answer keys (not ``sample:k``) are served semantically.
        """
        if embeddings is None or not hasattr(embeddings, "embed_query"):
            raise ConfigError(
                f"semantic needs 'embeddings': a LangChain Embeddings object, not {embeddings!r}"
            )
        from pydantic import ValidationError

        from llmcache.semantic import SemanticConfig, SemanticLayer

        try:
            settings = SemanticConfig.model_validate(config)
        except ValidationError as exc:
            field, value, message = field_error(exc, config)
            raise ConfigError(
                f"invalid semantic setting {field}={value!r}: {message}; "
                f"valid: {', '.join(SemanticConfig.model_fields)}"
            ) from None
        self.semantic = SemanticLayer(
            self.backend,
            embeddings,
            settings,
            stats=self.stats,
            policy=self.policy,
            codec=self.codec,
        )
        return self.semantic

    def _semantic_hit(
        self, decision: KeyDecision, prompt: str, llm_string: str, start: float
    ) -> Hit | None:
        """On an exact miss: a stored paraphrase's answer (counted a hit), or None."""
        assert self.semantic is not None
        match = self.semantic.find(prompt, llm_string)
        if match is None:
            return None
        try:
            data = self.backend.get(match.key)
        except Exception:  # the layer saw the store answer a moment ago: a miss, not a fault
            return None
        return self._semantic_answer(decision, match.key, data, start)

    async def _asemantic_hit(
        self, decision: KeyDecision, prompt: str, llm_string: str, start: float
    ) -> Hit | None:
        assert self.semantic is not None
        match = await self.semantic.afind(prompt, llm_string)
        if match is None:
            return None
        try:
            data = await self.backend.aget(match.key)
        except BaseException as exc:
            as_fault(exc)  # re-raises the caller's own cancellation
            return None
        return self._semantic_answer(decision, match.key, data, start)

    def _semantic_answer(
        self, decision: KeyDecision, key: str, data: bytes | None, start: float
    ) -> Hit | None:
        if data is None:
            return None
        answers = self._materialized(key, data)
        if not answers or len(answers) != 1:
            return None
        self.breaker.success()
        self.stats.incr("semantic_hits")
        self.stats.hit(len(data))
        seconds = time.perf_counter() - start
        self.stats.lookup_latency.add(seconds)
        if self._observer is not None:  # metrics see a semantic hit as a hit
            self._observed(decision, answers[0], data, seconds, None)
        return Hit(answers[0], key, _age(data))

    def _semantic_on(
        self, decision: KeyDecision, data: bytes | None, namespace: str | None
    ) -> bool:
        """An exact miss the semantic layer may answer: one-answer key, own namespace."""
        return data is None and self._semantic_scope(decision, namespace)

    def _indexed(self, plan: Update, namespace: str | None) -> bool:
        """A write the semantic layer indexes."""
        return plan.ok and self._semantic_scope(plan.decision, namespace)

    def _semantic_scope(self, decision: KeyDecision, namespace: str | None) -> bool:
        own = namespace is None or namespace == self.backend.namespace
        return decision.samples == 1 and own

    # -- sync ---------------------------------------------------------------------------------
    def lookup(self, prompt: str, llm_string: str) -> Any | None:
        """The cached answer for this request, or ``None`` (miss, bypass or store fault)."""
        decision = self._decide(prompt, llm_string, lookup=True)
        if decision is None or decision.key is None:
            return None
        start = time.perf_counter()
        # Inline rather than guard.run(): this is every hit's path (a context manager is ~3 us).
        try:
            data = self.backend.get(decision.key)
        except Exception as exc:
            self._lookup_failed(decision, exc, start)
            return None
        if (
            self.semantic is not None
            and self._semantic_on(decision, data, None)
            and (similar := self._semantic_hit(decision, prompt, llm_string, start)) is not None
        ):
            return similar.answer
        return self._looked_up(decision, data, start)

    def lookup_hit(
        self,
        prompt: str,
        llm_string: str,
        *,
        max_age: float | None = None,
        namespace: str | None = None,
    ) -> Hit | None:
        """:meth:`lookup` with what is known of the hit (key, age).

        ``max_age``: a hit older than this many seconds (or of unknown age) is a miss, counted
        as ``too_old``. ``namespace``: look in that namespace of the same store instead.
        """
        decision = self._decide(prompt, llm_string, lookup=True, namespace=namespace)
        if decision is None or decision.key is None:
            return None
        start = time.perf_counter()
        try:
            data = self.store(namespace).get(decision.key)
        except Exception as exc:
            self._lookup_failed(decision, exc, start, namespace)
            return None
        if self.semantic is not None and self._semantic_on(decision, data, namespace):
            similar = self._semantic_hit(decision, prompt, llm_string, start)
            if similar is not None and _young_enough(similar.age_s, max_age):
                return similar
        return self._hit(decision, data, start, max_age, namespace)

    def update(
        self,
        prompt: str,
        llm_string: str,
        answer: Any,
        *,
        ttl: float | None = None,
        namespace: str | None = None,
    ) -> None:
        """Store ``answer`` for this request (no-op when the policy bypasses it).

        ``ttl`` (seconds) overrides the cache's for this entry; ``namespace`` writes into that
        namespace of the same store.
        """
        plan = self._update_plan(prompt, llm_string, ttl, namespace)
        if plan is None:
            return
        store = self.store(namespace)
        if plan.decision.samples > 1:  # sample:k appends to stored answers
            plan.read(store.get)
        if (payload := plan.payload(answer)) is not None:
            plan.write(store.set, payload)
            if self.semantic is not None and self._indexed(plan, namespace):
                self.semantic.add(prompt, llm_string, plan.key, ttl=plan.ttl)

    def peek(
        self,
        prompt: str,
        llm_string: str,
        *,
        max_age: float | None = None,
        namespace: str | None = None,
    ) -> Hit | None:
        """Look without counting (a waiter polling for another caller's answer): no stats, no
        breaker change; a store fault or an unusable value is ``None``, never raised."""
        key = self.key(prompt, llm_string)
        if key is None or self.breaker.state != "closed":  # never take the probe's turn
            return None
        try:
            data = self.store(namespace).get(key)
        except Exception:
            return None
        return self._peeked(key, data, max_age)

    async def apeek(
        self,
        prompt: str,
        llm_string: str,
        *,
        max_age: float | None = None,
        namespace: str | None = None,
    ) -> Hit | None:
        """Async :meth:`peek`."""
        key = self.key(prompt, llm_string)
        if key is None or self.breaker.state != "closed":  # never take the probe's turn
            return None
        try:
            data = await self.store(namespace).aget(key)
        except BaseException as exc:
            as_fault(exc)  # re-raises the caller's own cancellation
            return None
        return self._peeked(key, data, max_age)

    def _peeked(self, key: str, data: bytes | None, max_age: float | None) -> Hit | None:
        if data is None:
            return None
        age = _age(data)
        if not _young_enough(age, max_age):
            return None
        answers = self._materialized(key, data)
        if not answers or len(answers) != 1:  # sample:k keys are not coalesced
            return None
        return Hit(answers[0], key, age)

    def store(self, namespace: str | None = None) -> Backend:
        """The backend, or its view of ``namespace`` (same connections; see ``in_namespace``)."""
        if namespace is None or namespace == self.backend.namespace:
            return self.backend
        return self.backend.in_namespace(namespace)

    def key(self, prompt: str, llm_string: str) -> str | None:
        """The cache key of this request; None when the policy bypasses it (nothing counted)."""
        return self.policy.decide(prompt, llm_string).key

    def forget(self, prompt: str, llm_string: str, *, namespace: str | None = None) -> bool:
        """Delete this request's entry (all its ``sample:k`` answers): the one answer a user
        reported as wrong, without clearing the namespace. True if an entry was there.

        A store fault follows ``on_error`` (counted; raised with ``on_error="raise"``) and
        returns False.
        """
        key = self.key(prompt, llm_string)
        if key is None:
            return False
        store = self.store(namespace)
        found = False
        with self.guard.run("forget", "nothing forgotten") as ok:
            found = store.get(key) is not None
            store.delete(key)
        if self.semantic is not None and namespace is None:
            self.semantic.remove(prompt, llm_string, key)
        self._forget_local(key)
        return found and ok.ok

    async def aforget(self, prompt: str, llm_string: str, *, namespace: str | None = None) -> bool:
        """Async :meth:`forget`."""
        key = self.key(prompt, llm_string)
        if key is None:
            return False
        store = self.store(namespace)
        found = False
        with self.guard.run("forget", "nothing forgotten") as ok:
            found = await store.aget(key) is not None
            await store.adelete(key)
        if self.semantic is not None and namespace is None:
            await self.semantic.aremove(prompt, llm_string, key)
        self._forget_local(key)
        return found and ok.ok

    def _forget_local(self, key: str) -> None:
        with self._memo_lock:
            self._memo.pop(key, None)
        with self._turns_lock:
            self._turns.pop(key, None)

    def clear(self) -> None:
        """Remove every entry of this cache's namespace (other namespaces are untouched)."""
        with self.guard.run("clear"):
            self.backend.clear()

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    # -- async --------------------------------------------------------------------------------
    async def alookup(self, prompt: str, llm_string: str) -> Any | None:
        """Async :meth:`lookup`, on the backend's native async path."""
        decision = self._decide(prompt, llm_string, lookup=True)
        if decision is None or decision.key is None:
            return None
        start = time.perf_counter()
        # Inline rather than guard.run(): this is every hit's path (a context manager is ~3 us).
        try:
            data = await self.backend.aget(decision.key)
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            self._lookup_failed(decision, as_fault(exc), start)
            return None
        if (
            self.semantic is not None
            and self._semantic_on(decision, data, None)
            and (similar := await self._asemantic_hit(decision, prompt, llm_string, start))
            is not None
        ):
            return similar.answer
        return self._looked_up(decision, data, start)

    async def alookup_hit(
        self,
        prompt: str,
        llm_string: str,
        *,
        max_age: float | None = None,
        namespace: str | None = None,
    ) -> Hit | None:
        """Async :meth:`lookup_hit`."""
        decision = self._decide(prompt, llm_string, lookup=True, namespace=namespace)
        if decision is None or decision.key is None:
            return None
        start = time.perf_counter()
        try:
            data = await self.store(namespace).aget(decision.key)
        except BaseException as exc:  # the caller's own cancellation is re-raised by as_fault
            self._lookup_failed(decision, as_fault(exc), start, namespace)
            return None
        if self.semantic is not None and self._semantic_on(decision, data, namespace):
            similar = await self._asemantic_hit(decision, prompt, llm_string, start)
            if similar is not None and _young_enough(similar.age_s, max_age):
                return similar
        return self._hit(decision, data, start, max_age, namespace)

    async def aupdate(
        self,
        prompt: str,
        llm_string: str,
        answer: Any,
        *,
        ttl: float | None = None,
        namespace: str | None = None,
    ) -> None:
        """Async :meth:`update`."""
        plan = self._update_plan(prompt, llm_string, ttl, namespace)
        if plan is None:
            return
        store = self.store(namespace)
        if plan.decision.samples > 1:
            await plan.aread(store.aget)
        if (payload := plan.payload(answer)) is not None:
            await plan.awrite(store.aset, payload)
            if self.semantic is not None and self._indexed(plan, namespace):
                await self.semantic.aadd(prompt, llm_string, plan.key, ttl=plan.ttl)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        with self.guard.run("clear"):
            await self.backend.aclear()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.backend.aclose()

    def explain(self, prompt: str, llm_string: str) -> str:
        """The key material of a request as readable JSON (what identifies it, what was dropped)."""
        return self.policy.explain(prompt, llm_string)

    # -- internals ----------------------------------------------------------------------------
    def _decide(
        self, prompt: str, llm_string: str, *, lookup: bool = False, namespace: str | None = None
    ) -> KeyDecision | None:
        decision = self.policy.decide(prompt, llm_string)
        if decision.key is None:
            if lookup:  # one request = one lookup (+ one update): count its bypass once
                self.stats.incr("bypasses")
            if self._observer is not None:
                op = "lookup" if lookup else "update"
                self._observer.event(self, op, "bypass", namespace=namespace, decision=decision)
            return None
        if not self.guard.allow():
            # The store kept failing: skip it entirely (no timeout paid) until the probe. A
            # lookup is a miss; a skipped write is counted apart (hits+misses+bypasses=lookups).
            self.stats.incr("misses" if lookup else "skipped_writes")
            if self._observer is not None:
                op = "lookup" if lookup else "update"
                self._observer.event(self, op, "skipped", namespace=namespace, decision=decision)
            return None
        return decision

    def _fault(self, op: str, exc: Exception) -> None:
        self.guard.fault(op, exc)
        if op == "lookup":
            self.stats.incr("misses")

    def _looked_up(
        self, decision: KeyDecision, data: bytes | None, start: float, namespace: str | None = None
    ) -> Any | None:
        """What a lookup returns once the store answered (``data``, or None for a miss)."""
        assert decision.key is not None
        self.breaker.success()
        if self._failed_lookups:  # the store answers again: this key's update may proceed
            self._skip_update(decision.key, count=False)
        answer = self._answer_from(decision, data)
        seconds = time.perf_counter() - start
        self.stats.lookup_latency.add(seconds)
        if self._observer is not None:  # the only metrics cost of a hit while they are off
            self._observed(decision, answer, data, seconds, namespace)
        return answer

    def _observed(
        self,
        decision: KeyDecision,
        answer: Any | None,
        data: bytes | None,
        seconds: float,
        namespace: str | None,
    ) -> None:
        assert self._observer is not None
        result, nbytes = ("miss", 0) if answer is None else ("hit", len(data or b""))
        self._observer.event(
            self,
            "lookup",
            result,
            seconds,
            nbytes=nbytes,
            namespace=namespace,
            decision=decision,
            answer=answer,
        )

    def _hit(
        self,
        decision: KeyDecision,
        data: bytes | None,
        start: float,
        max_age: float | None,
        namespace: str | None = None,
    ) -> Hit | None:
        assert decision.key is not None
        age = None if data is None else _age(data)
        if data is not None and not _young_enough(age, max_age):
            # Too old for this caller: a miss (the store answered, so the breaker closes).
            self.breaker.success()
            self.stats.incr("too_old")
            self.stats.incr("misses")
            if self._observer is not None:
                self._observed(decision, None, data, time.perf_counter() - start, namespace)
            return None
        answer = self._looked_up(decision, data, start, namespace)
        return None if answer is None else Hit(answer, decision.key, age)

    def _lookup_failed(
        self, decision: KeyDecision, exc: Exception, start: float, namespace: str | None = None
    ) -> None:
        key = decision.key
        assert key is not None
        if self._observer is not None:  # before the guard, which may raise (on_error="raise")
            seconds = time.perf_counter() - start
            self._observer.event(
                self, "lookup", "error", seconds, namespace=namespace, exc=exc, decision=decision
            )
        self._fault("lookup", exc)
        with self._turns_lock:
            self._failed_lookups[key] = time.monotonic()
            self._failed_lookups.move_to_end(key)
            if len(self._failed_lookups) > _FAILED_LOOKUPS_KEPT:
                self._failed_lookups.popitem(last=False)

    def store_failing(self, key: str) -> bool:
        """Whether the store is failing for ``key``: its lookup failed a moment ago (its update
        will be skipped) or the breaker is not closed. A caller about to make another store
        call for this key before the update (a single-flight lease) skips it then, so a hung
        store costs a call one timeout at most."""
        return self.guard.breaker.state != "closed" or self._failed_recently(key, forget=False)

    def _failed_recently(self, key: str, *, forget: bool) -> bool:
        """Whether ``key``'s lookup failed in the last moment (``forget``: and drop the record)."""
        if not self._failed_lookups:
            return False
        with self._turns_lock:
            records = self._failed_lookups
            failed_at = records.pop(key, None) if forget else records.get(key)
        return failed_at is not None and time.monotonic() - failed_at <= _FAILED_LOOKUP_SECONDS

    def _skip_update(self, key: str, *, count: bool = True) -> bool:
        """True (once) when this key's lookup just failed: the store is sick, don't wait again."""
        if not self._failed_recently(key, forget=True):
            return False
        if count:
            self.stats.incr("skipped_after_fault")
        return True

    def _update_plan(
        self,
        prompt: str,
        llm_string: str,
        ttl: float | None = None,
        namespace: str | None = None,
    ) -> Update | None:
        """The steps of an update, or None when it is bypassed or follows a failed lookup."""
        decision = self._decide(prompt, llm_string, namespace=namespace)
        if decision is None or decision.key is None:
            return None
        if self._skip_update(decision.key):
            if self._observer is not None:
                self._observer.event(
                    self, "update", "skipped", namespace=namespace, decision=decision
                )
            return None
        ttl = self.ttl if ttl is None else check_ttl(ttl)
        return Update(self, decision, decision.key, ttl, namespace)

    def _payload(self, decision: KeyDecision, data: bytes | None, answer: Any) -> bytes | None:
        """Bytes to store: ``answer`` after the stored ones (sample:k); None when k are stored."""
        assert decision.key is not None
        stored = self._stored_answers(decision.key, data) or []
        if len(stored) >= decision.samples:
            return None
        try:
            return self.codec.encode(decision.key, [*stored, answer])
        except Exception as exc:  # CodecError: not JSON (a set, a lone surrogate), too big
            self.unstorable(exc)
            return None

    def unstorable(self, exc: Exception) -> None:
        """Count an answer that cannot be stored (logged once per burst); never raised."""
        self.stats.incr("unstorable")
        self.guard.note("update", exc, "not caching that answer")

    def _stored_answers(self, key: str, data: bytes | None) -> list[Any] | None:
        if data is None:
            return None
        try:
            answers = self.codec.decode(key, data)
        except Exception as exc:  # CodecError; nothing a stored value holds may raise to callers
            self.stats.incr("decode_errors")
            log.debug("llmcache: undecodable value under %s: %s", key, exc)
            return None
        if not isinstance(answers, list) or not answers:
            self.stats.incr("decode_errors")
            return None
        return answers

    def _materialized(self, key: str, data: bytes | None) -> list[Any] | None:
        """The stored answers, decoded and materialized; reused while the bytes are the same.

        Only materialized answers are memoised, and (with :attr:`share`) only from their second
        read on: most entries are read once, and an answer used once needs no sharing. Plain
        JSON answers are decoded afresh, so a caller may change what it receives.
        """
        if data is None:
            return None
        if self.materialize is None:
            return self._stored_answers(key, data)
        seen = False
        with self._memo_lock:
            memo = self._memo.get(key)
            if memo is not None and memo[0] == data:
                if memo[1] is not None:
                    self._memo.move_to_end(key)
                    return memo[1]
                seen = True
        answers = self._stored_answers(key, data)
        if answers is None:
            return None
        try:
            answers = [self.materialize(a) for a in answers]
            if seen and self.share is not None:
                answers = [self.share(a) for a in answers]
        except Exception as exc:  # CodecError, or a materializer's own bug: a miss, not a raise
            self.stats.incr("decode_errors")
            log.debug("llmcache: stored answer under %s rejected: %s", key, exc)
            return None
        if len(data) <= _MEMO_MAX_VALUE:
            # First read (with share): remember the bytes only; the answer goes to this caller.
            kept = answers if seen or self.share is None else None
            with self._memo_lock:
                self._memo[key] = (data, kept)
                self._memo.move_to_end(key)
                if len(self._memo) > _MEMO_ENTRIES:
                    self._memo.popitem(last=False)
        return answers

    def _answer_from(self, decision: KeyDecision, data: bytes | None) -> Any | None:
        assert decision.key is not None
        answers = self._materialized(decision.key, data)
        if answers is None or len(answers) < decision.samples:
            # Under sample:k a key is a miss until k answers are stored.
            self.stats.incr("misses")
            return None
        self.stats.hit(len(data or b""))
        if decision.samples == 1:
            return answers[0]
        return answers[self._next_turn(decision.key) % len(answers)]

    def _next_turn(self, key: str) -> int:
        with self._turns_lock:
            turn = self._turns.pop(key, -1) + 1
            self._turns[key] = turn
            if len(self._turns) > _SAMPLE_TURNS_KEPT:
                self._turns.popitem(last=False)
            return turn

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LLMCache({self.backend!r}, policy={self.policy!r})"


def _age(data: bytes) -> float | None:
    """Seconds since ``data`` was written (its header's time); None when it has none."""
    stamp = written_at(data)
    return None if stamp is None else max(0.0, time.time() - stamp)


def _young_enough(age: float | None, max_age: float | None) -> bool:
    """A hit of this age passes ``max_age`` (unknown ages never do)."""
    return max_age is None or (age is not None and age <= max_age)
