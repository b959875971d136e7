"""The semantic layer: an LSH index in the cache's own store, plain operations only.

On an exact miss, :meth:`SemanticLayer.find` embeds the prompt (one embedding call), hashes it
with ``tables × bits`` random hyperplanes and reads one bucket per table; each bucket holds
(entry id, signature) pairs of earlier prompts with the same model and parameters. Candidates
are ranked by the Hamming distance of their whole signature (an estimate of the angle), those
that cannot reach the threshold are dropped, the best ``max_candidates`` entries are read in one
batch and reranked by exact cosine; the best one above the threshold that is verified (its
stored key is the key of its stored prompt under this llm_string) and that no guard vetoes is
the match. After the model answered, :meth:`SemanticLayer.add` stores the entry.

Keys, all in the backend's namespace (so ``clear`` clears the index), ``<scope>`` a digest of
the index version, key policy version, model and parameters (as the key policy sees them),
embeddings identity and hashing configuration::

    sem:<scope>:b:<table>:<bucket>   list of 8-byte entry id + packed signature (bounded)
    sem:<scope>:e:<entry id>         [answer key, prompt, vector (base64 int8/float16), dtype]

Entries go through the cache's codec (key-checked, compressed, encrypted when it encrypts) and
expire with the answer; buckets are ``Lists`` (Redis lists, Momento lists, memory, disk) trimmed
to ``bucket_max_len`` and renewed on each push; a backend without ``Lists`` keeps each bucket
in one value, read-modify-written (a lost race loses a candidate, never serves a wrong answer).

Example::

    from llmcache.backends.memory import MemoryBackend
    from llmcache.semantic import HashingEmbeddings, SemanticConfig, SemanticLayer

    layer = SemanticLayer(MemoryBackend(), HashingEmbeddings(), SemanticConfig(threshold=0.8))
    layer.add("what is the capital of france", "model=x", "v1:key-of-that-answer")
    match = layer.find("what is the capital of france please", "model=x")
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmcache._breaker import CircuitBreaker
from llmcache._guard import Guard, as_fault
from llmcache.backends.base import Backend
from llmcache.backends.capabilities import (
    Lists,
    ListsBatch,
    Logs,
    aget_many,
    aset_many,
    get_many,
    set_many,
)
from llmcache.codec import Codec
from llmcache.keys import KeyPolicy
from llmcache.semantic.guards import ALL_GUARDS, DEFAULT_GUARDS, differences
from llmcache.semantic.text import text_of
from llmcache.semantic.vectors import (
    Vector,
    as_unit,
    cosine,
    decode_vector,
    encode_vector,
    hamming,
    hyperplanes,
    plane_norms,
    signature,
)
from llmcache.stats import LatencyWindow, Stats

__all__ = ["COUNTERS", "INDEX_VERSION", "SemanticConfig", "SemanticLayer", "SemanticMatch"]

#: Part of every index key: a change of layout is a new version, old entries are never read.
INDEX_VERSION = "s1"
_ID_BYTES = 8  # entry ids: 64 bits of the answer key's digest (collisions are verified away)
_VECTORS_KEPT = 1024  # prompt vectors remembered between find and add (one embedding per miss)
_MAX_KEY_CHARS = 1024
# Candidates whose signature differs in more bits than the threshold allows, plus this many
# standard deviations of the estimate, cannot reach the threshold: they are dropped before any
# entry is read. 3: a miss chance under 1e-3 for one exactly at the threshold (less above it);
# 4 (3e-5) let ~15x more unrelated entries through at 10^5 entries, each read and decoded.
_HAMMING_SIGMAS = 3.0

#: The layer's counters (``SemanticLayer.counters``); ``veto_<guard>`` are added per guard.
COUNTERS = (
    "lookups",  # find calls (each is one of: hits, misses, bypasses, errors)
    "hits",
    "misses",
    "bypasses",  # the key policy bypasses the request: no semantic lookup either
    "embed_errors",  # the embeddings raised or returned something unusable
    "store_errors",  # the store failed (or the breaker is open): no match
    "candidates",  # entries read and reranked (sum over lookups)
    "below_threshold",  # lookups whose best candidate was under the threshold
    "vetoed",  # candidates above the threshold that a guard refused
    "unverified",  # entries whose stored key is not their stored prompt's key here
    "corrupt",  # entries that do not decode (foreign, truncated, another key's)
    "adds",
    "add_errors",
)

T = TypeVar("T")


class SemanticConfig(BaseModel):
    """How the semantic layer matches (pydantic; settable as ``LLMCACHE_SEMANTIC__*``).

    - ``threshold``: the least cosine similarity of a hit (then the guards decide).
    - ``tables`` × ``bits``: LSH tables of ``bits`` hyperplanes each; more tables find more
      paraphrases (one bucket read per table), more bits make buckets smaller.
    - ``probes``: extra buckets a lookup reads, beyond one per table: each is a table's bucket
      with one bit flipped, the bits the prompt is least sure of first (multi-probe LSH). They
      find paraphrases near the threshold that fell just across a hyperplane, for no extra
      write (adds still push one bucket per table).
    - ``max_candidates``: entries read and reranked per lookup, at most.
    - ``bucket_max_len``: entries one bucket keeps (the newest).
    - ``guards``: the false-hit vetoes applied (see :mod:`llmcache.semantic.guards`).
    - ``vector_dtype``: stored vectors as ``int8`` (1 byte a dimension) or ``float16`` (2).
    - ``seed``: of the hyperplanes; every process sharing a store must use the same.
    - ``embeddings_id``: names the embedding model in the index scope (default: the class and
      its ``model``/``model_name``); vectors of two models are never compared.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Defaults measured with all-MiniLM-L6-v2 (docs/semantic.md, "Measured"): at 0.85 the guards
    # keep every hard negative out; 12 tables of 9 bits and 12 probes lose 0.2-0.6 points of
    # recall to brute force and keep buckets under ``bucket_max_len`` up to ~10^5 entries
    # (2^9 buckets a table); 12 probes add ~0.5 ms to a Redis miss at 10^5 entries.
    threshold: float = Field(default=0.85, gt=0.0, le=1.0)
    tables: int = Field(default=12, ge=1, le=64)
    bits: int = Field(default=9, ge=1, le=24)
    probes: int = Field(default=12, ge=0, le=1024)
    max_candidates: int = Field(default=32, ge=1, le=1024)
    bucket_max_len: int = Field(default=256, ge=1, le=100_000)
    guards: list[str] = Field(default_factory=lambda: list(DEFAULT_GUARDS))
    vector_dtype: Literal["float16", "int8"] = "int8"
    seed: int = Field(default=0, ge=0)
    embeddings_id: str | None = None

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in ALL_GUARDS]
        if unknown:
            raise ValueError(f"unknown guard {unknown[0]!r}; valid guards: {', '.join(ALL_GUARDS)}")
        return list(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    """A semantic hit: the cache key to read, how similar, and the prompt stored with it."""

    key: str
    similarity: float
    prompt: str


@dataclass(slots=True)
class _Query:
    """One prompt hashed into the index."""

    scope: str
    unit: Vector
    sig: bytes  # packed sign bits, tables × bits of them
    bucket_keys: list[str]  # one per table: where the prompt's entry is pushed
    probe_keys: list[str]  # the neighbour buckets a lookup reads too (``probes``)

    @property
    def read_keys(self) -> list[str]:
        return self.bucket_keys + self.probe_keys


@dataclass(slots=True)
class _Trace:
    """What one lookup saw (``explain``), and its outcome."""

    counting: bool
    doc: dict[str, Any] = field(default_factory=dict)
    ranked: list[dict[str, Any]] = field(default_factory=list)


class SemanticLayer:
    """Semantic hits over any backend: find on an exact miss, add after an exact update.

    Never raises to the caller and never waits unboundedly: an embedding error or a store fault
    is no match (counted; logged once per burst by the guard), one store timeout at most per
    call. ``policy`` must be the cache's key policy: it scopes the index to the model and
    parameters the exact key uses, and verifies a match's key. ``codec`` (the cache's) seals the
    stored prompts as it seals answers.
    """

    def __init__(
        self,
        backend: Backend,
        embeddings: Any,
        config: SemanticConfig | None = None,
        *,
        stats: Stats | None = None,
        policy: KeyPolicy | None = None,
        codec: Codec | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.backend = backend
        self.embeddings = embeddings
        self.config = config or SemanticConfig()
        self.policy = policy or KeyPolicy()
        self.codec = codec or Codec()
        self.guard = Guard(
            backend, on_error="miss", breaker=breaker, stats=stats, what="semantic index"
        )
        self.latency = LatencyWindow()
        self.embeddings_id = self.config.embeddings_id or _embeddings_id(embeddings)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._vectors: OrderedDict[bytes, Vector] = OrderedDict()
        cfg = self.config
        self._sig_bytes = (cfg.tables * cfg.bits + 7) // 8
        self._width = _ID_BYTES + self._sig_bytes  # one bucket element: entry id + signature
        self._bucket_bytes = cfg.bucket_max_len * self._width
        # Buckets as byte logs (Redis strings) where the store has them, else lists, else
        # values; logs get keys of their own, so a store that held list buckets (an earlier
        # version, another process) never meets a string under the same key.
        self._infix = "l" if isinstance(backend, Logs) else "b"
        n = cfg.tables * cfg.bits
        p = math.acos(max(-1.0, min(1.0, cfg.threshold))) / math.pi
        self._cutoff = math.ceil(n * p + _HAMMING_SIGMAS * math.sqrt(n * p * (1 - p)) + 1)

    # -- counters -----------------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, int]:
        """A copy of the counters (:data:`COUNTERS` plus ``veto_<guard>`` per guard)."""
        with self._lock:
            return dict(self._counts)

    def _count(self, trace: _Trace | None, name: str, amount: int = 1) -> None:
        if trace is not None and not trace.counting:
            return
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

    # -- find ---------------------------------------------------------------------------------
    def find(self, prompt: str, llm_string: str) -> SemanticMatch | None:
        """The best verified, unvetoed stored prompt close to ``prompt``, or ``None``."""
        return self._find(prompt, llm_string, _Trace(counting=True))

    async def afind(self, prompt: str, llm_string: str) -> SemanticMatch | None:
        """Async :meth:`find`."""
        return await self._afind(prompt, llm_string, _Trace(counting=True))

    def explain(self, prompt: str, llm_string: str) -> dict[str, Any]:
        """What a lookup of this request sees: scope, buckets, candidates with their similarity
        and guard vetoes, and the match (for ``llmcache key --semantic``). Counts nothing."""
        trace = _Trace(counting=False)
        match = self._find(prompt, llm_string, trace)
        doc = trace.doc
        doc["candidates"] = trace.ranked
        doc["match"] = (
            None
            if match is None
            else {
                "key": match.key,
                "similarity": round(match.similarity, 4),
                "prompt": match.prompt,
            }
        )
        return doc

    def _find(self, prompt: str, llm_string: str, trace: _Trace) -> SemanticMatch | None:
        start = time.perf_counter()
        scope = self._begin(prompt, llm_string, trace)
        if scope is None:
            return None
        try:
            unit = self._recall(prompt)
            if unit is None:
                unit = self._remember(prompt, as_unit(self.embeddings.embed_query(text_of(prompt))))
        except Exception as exc:
            self._embed_failed(exc, trace)
            return None
        query = self._query(scope, unit, trace, probe=True)
        if not self._allow(trace):
            return None
        try:
            backend = self.backend
            if isinstance(backend, Logs):  # one pipeline (Redis), one reply per bucket
                rows = self._log_rows(backend.log_tail_many(query.read_keys, self._bucket_bytes))
            elif isinstance(backend, ListsBatch):
                rows = self._list_rows(backend.list_range_many(query.read_keys))
            elif isinstance(backend, Lists):
                rows = self._list_rows([backend.list_range(k) for k in query.read_keys])
            else:
                rows = self._value_rows(get_many(backend, query.read_keys))
            ids = self._rank_rows(query, rows, trace)
            keys = [self._entry_key(scope, i) for i in ids]
            records = get_many(self.backend, keys) if keys else []
        except Exception as exc:
            self._store_failed("semantic find", exc, trace)
            return None
        self.guard.success()
        return self._judge(prompt, llm_string, query, ids, records, trace, start)

    async def _afind(self, prompt: str, llm_string: str, trace: _Trace) -> SemanticMatch | None:
        start = time.perf_counter()
        scope = self._begin(prompt, llm_string, trace)
        if scope is None:
            return None
        try:
            unit = self._recall(prompt)
            if unit is None:
                unit = self._remember(
                    prompt, as_unit(await _aembed(self.embeddings, text_of(prompt)))
                )
        except BaseException as exc:
            self._embed_failed(as_fault(exc), trace)
            return None
        query = self._query(scope, unit, trace, probe=True)
        if not self._allow(trace):
            return None
        try:
            backend = self.backend
            if isinstance(backend, Logs):
                blobs = await backend.alog_tail_many(query.read_keys, self._bucket_bytes)
                rows = self._log_rows(blobs)
            elif isinstance(backend, ListsBatch):
                rows = self._list_rows(await backend.alist_range_many(query.read_keys))
            elif isinstance(backend, Lists):
                rows = self._list_rows(await _all(backend.alist_range(k) for k in query.read_keys))
            else:
                rows = self._value_rows(await aget_many(backend, query.read_keys))
            ids = self._rank_rows(query, rows, trace)
            keys = [self._entry_key(scope, i) for i in ids]
            records = await aget_many(backend, keys) if keys else []
        except BaseException as exc:
            self._store_failed("semantic find", as_fault(exc), trace)
            return None
        self.guard.success()
        return self._judge(prompt, llm_string, query, ids, records, trace, start)

    # -- add ----------------------------------------------------------------------------------
    def add(self, prompt: str, llm_string: str, key: str, *, ttl: float | None = None) -> None:
        """Index ``prompt`` as the prompt whose answer is stored under ``key`` (call it after the
        exact update stored ``key``, with the answer's ``ttl``). Never raises."""
        scope = self._scope(prompt, llm_string, key)
        if scope is None:
            return
        try:
            unit = self._recall(prompt)
            if unit is None:
                unit = self._remember(prompt, as_unit(self.embeddings.embed_query(text_of(prompt))))
        except Exception as exc:
            self._embed_failed(exc, None, add=True)
            return
        query = self._query(scope, unit, None)
        element, entry_key, record = self._entry(query, prompt, key)
        if not self.guard.allow():
            self._count(None, "add_errors")
            return
        try:
            backend = self.backend
            if isinstance(backend, Logs):  # two round trips: the entry, every bucket
                backend.set(entry_key, record, ttl)
                backend.log_append_many(
                    query.bucket_keys, element, max_bytes=self._bucket_bytes, ttl=ttl
                )
            elif isinstance(backend, Lists):
                backend.set(entry_key, record, ttl)
                for bucket in query.bucket_keys:
                    backend.list_push(
                        bucket, [element], max_len=self.config.bucket_max_len, ttl=ttl
                    )
            else:
                old = get_many(backend, query.bucket_keys)
                items = self._merged(query.bucket_keys, old, element)
                set_many(backend, {**items, entry_key: record}, ttl)
        except Exception as exc:
            self._store_failed("semantic add", exc, None, add=True)
            return
        self.guard.success()
        self._count(None, "adds")

    async def aadd(
        self, prompt: str, llm_string: str, key: str, *, ttl: float | None = None
    ) -> None:
        """Async :meth:`add`."""
        scope = self._scope(prompt, llm_string, key)
        if scope is None:
            return
        try:
            unit = self._recall(prompt)
            if unit is None:
                unit = self._remember(
                    prompt, as_unit(await _aembed(self.embeddings, text_of(prompt)))
                )
        except BaseException as exc:
            self._embed_failed(as_fault(exc), None, add=True)
            return
        query = self._query(scope, unit, None)
        element, entry_key, record = self._entry(query, prompt, key)
        if not self.guard.allow():
            self._count(None, "add_errors")
            return
        try:
            backend = self.backend
            max_len = self.config.bucket_max_len
            if isinstance(backend, Logs):
                await backend.aset(entry_key, record, ttl)
                await backend.alog_append_many(
                    query.bucket_keys, element, max_bytes=self._bucket_bytes, ttl=ttl
                )
            elif isinstance(backend, Lists):
                await backend.aset(entry_key, record, ttl)
                await _all(
                    backend.alist_push(b, [element], max_len=max_len, ttl=ttl)
                    for b in query.bucket_keys
                )
            else:
                old = await aget_many(backend, query.bucket_keys)
                items = self._merged(query.bucket_keys, old, element)
                await aset_many(backend, {**items, entry_key: record}, ttl)
        except BaseException as exc:
            self._store_failed("semantic add", as_fault(exc), None, add=True)
            return
        self.guard.success()
        self._count(None, "adds")

    # -- remove -------------------------------------------------------------------------------
    def remove(self, prompt: str, llm_string: str, key: str) -> None:
        """Forget the entry of ``key`` (its bucket slots then point at nothing). Never raises."""
        scope = self._scope(prompt, llm_string, key)
        if scope is not None and self.guard.allow():
            with self.guard.run("semantic remove", "entry left to expire"):
                self.backend.delete(self._entry_key(scope, _entry_id(key)))

    async def aremove(self, prompt: str, llm_string: str, key: str) -> None:
        """Async :meth:`remove`."""
        scope = self._scope(prompt, llm_string, key)
        if scope is not None and self.guard.allow():
            with self.guard.run("semantic remove", "entry left to expire"):
                await self.backend.adelete(self._entry_key(scope, _entry_id(key)))

    # -- shared steps (pure but for counters) -------------------------------------------------
    def _begin(self, prompt: str, llm_string: str, trace: _Trace) -> str | None:
        self._count(trace, "lookups")
        cfg = self.config
        trace.doc.update(
            threshold=cfg.threshold,
            tables=cfg.tables,
            bits=cfg.bits,
            probes=cfg.probes,
            guards=list(cfg.guards),
            embeddings=self.embeddings_id,
            outcome="miss",
        )
        decision = self.policy.decide(prompt, llm_string)
        if decision.key is None:
            self._count(trace, "bypasses")
            trace.doc["outcome"] = f"bypass: {decision.reason}"
            return None
        scope = self._scope_of(decision.material)
        trace.doc["scope"] = scope
        return scope

    def _scope(self, prompt: str, llm_string: str, key: str) -> str | None:
        """The scope of an entry to add or remove; None (nothing to do) for a bypass or a key
        that is not a short string."""
        if not isinstance(key, str) or not 0 < len(key) <= _MAX_KEY_CHARS:
            return None
        decision = self.policy.decide(prompt, llm_string)
        return None if decision.key is None else self._scope_of(decision.material)

    def _scope_of(self, material: dict[str, Any]) -> str:
        cfg = self.config
        head = orjson.dumps(
            [
                INDEX_VERSION,
                self.policy.version,
                material.get("model"),
                material.get("params"),
                self.embeddings_id,
                cfg.seed,
                cfg.tables,
                cfg.bits,
            ],
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=repr,
        )
        return hashlib.blake2b(head, digest_size=12).hexdigest()

    def _query(
        self, scope: str, unit: Vector, trace: _Trace | None, *, probe: bool = False
    ) -> _Query:
        """``unit`` hashed: its bucket per table, and with ``probe`` (lookups; an add writes
        only its own buckets) the neighbour buckets to read too."""
        cfg = self.config
        count = cfg.tables * cfg.bits
        planes = hyperplanes(cfg.seed, count, unit.size)
        bits = signature(unit, planes)
        weights = 1 << np.arange(cfg.bits - 1, -1, -1, dtype=np.int64)
        codes = bits.reshape(cfg.tables, cfg.bits).astype(np.int64) @ weights
        bucket_keys = [f"sem:{scope}:{self._infix}:{t}:{int(c):x}" for t, c in enumerate(codes)]
        probe_keys = []
        if probe and cfg.probes:
            # A paraphrase near the threshold most likely lands across the hyperplanes the
            # prompt is closest to: flip those bits first (distance to the plane, not the
            # projection, so planes of any length compare).
            margin = np.abs(planes @ unit) / plane_norms(cfg.seed, count, unit.size)
            for flat in np.argsort(margin, kind="stable")[: cfg.probes]:
                table, bit = divmod(int(flat), cfg.bits)
                code = int(codes[table]) ^ int(weights[bit])
                probe_keys.append(f"sem:{scope}:{self._infix}:{table}:{code:x}")
        if trace is not None:
            trace.doc["buckets"] = bucket_keys
            trace.doc["probe_buckets"] = probe_keys
            trace.doc["dim"] = int(unit.size)
        return _Query(scope, unit, np.packbits(bits).tobytes(), bucket_keys, probe_keys)

    def _entry_key(self, scope: str, entry_id: bytes) -> str:
        return f"sem:{scope}:e:{entry_id.hex()}"

    def _entry(self, query: _Query, prompt: str, key: str) -> tuple[bytes, str, bytes]:
        """(bucket element, entry key, entry bytes) of ``prompt`` stored under ``key``."""
        entry_id = _entry_id(key)
        entry_key = self._entry_key(query.scope, entry_id)
        dtype = self.config.vector_dtype
        vector = base64.b64encode(encode_vector(query.unit, dtype)).decode()
        record = self.codec.encode(entry_key, [key, prompt, vector, dtype])
        return entry_id + query.sig, entry_key, record

    def _merged(self, keys: list[str], old: list[bytes | None], element: bytes) -> dict[str, bytes]:
        """Bucket values with ``element`` appended, newest ``bucket_max_len`` kept (no Lists)."""
        width, keep = len(element), self.config.bucket_max_len
        out: dict[str, bytes] = {}
        for key, value in zip(keys, old, strict=True):
            data = value if value is not None and len(value) % width == 0 else b""
            out[key] = (data + element)[-keep * width :]
        return out

    def _list_rows(self, buckets: list[list[bytes]]) -> bytes:
        """List buckets' elements as one run of whole rows (an element of another width, foreign
        or truncated, is skipped)."""
        width, elements = self._width, itertools.chain.from_iterable
        if set(map(len, elements(buckets))) <= {width}:
            return b"".join(elements(buckets))
        return b"".join(e for e in elements(buckets) if len(e) == width)

    def _value_rows(self, values: list[bytes | None]) -> bytes:
        """Buckets kept in one value each (no Lists): a value that is not whole rows is not
        ours and is skipped."""
        return b"".join(v for v in values if v and len(v) % self._width == 0)

    def _log_rows(self, tails: list[bytes]) -> bytes:
        """Log tails (Logs): rows are whole from the end, so a ragged front (the cut of the
        tail, or a foreign write before ours) is dropped."""
        return b"".join(t[len(t) % self._width :] for t in tails)

    def _rank_rows(self, query: _Query, blob: bytes, trace: _Trace) -> list[bytes]:
        """Entry ids worth reading: distinct, within the Hamming cutoff, closest first (ties in
        the order the buckets hold them). ``blob``: whole rows (id + signature), bucket order."""
        width = self._width
        trace.doc["bucket_entries"] = len(blob) // width
        # Vectorised, and the cutoff before anything per id: at 10^5 entries a lookup reads
        # ~5,000 elements, of which a handful are within the cutoff.
        rows = np.frombuffer(blob, dtype=np.uint8).reshape(-1, width)
        distance = hamming(query.sig, rows[:, _ID_BYTES:])
        within = np.flatnonzero(distance <= self._cutoff)
        ids = rows[within, :_ID_BYTES].copy().view(np.uint64).ravel()
        _, first = np.unique(ids, return_index=True)
        first.sort()  # each id's first element within the cutoff, in bucket order
        near = within[first]
        trace.doc["within_cutoff"] = int(near.size)
        best = near[np.argsort(distance[near], kind="stable")][: self.config.max_candidates]
        return [rows[i, :_ID_BYTES].tobytes() for i in best]

    def _judge(
        self,
        prompt: str,
        llm_string: str,
        query: _Query,
        ids: list[bytes],
        records: list[bytes | None],
        trace: _Trace,
        start: float,
    ) -> SemanticMatch | None:
        scored: list[tuple[float, str, str]] = []
        for entry_id, data in zip(ids, records, strict=True):
            if data is None:
                continue  # expired or removed: its bucket slot is stale
            entry = self._decode(query.scope, entry_id, data, query.unit.size)
            if entry is None:
                self._count(trace, "corrupt")
                continue
            key, stored_prompt, vector = entry
            scored.append((cosine(query.unit, vector), key, stored_prompt))
        self._count(trace, "candidates", len(scored))
        scored.sort(key=lambda s: -s[0])
        threshold = self.config.threshold
        match: SemanticMatch | None = None
        for similarity, key, stored in scored:
            row: dict[str, Any] = {"similarity": round(similarity, 4), "key": key, "prompt": stored}
            trace.ranked.append(row)
            if match is not None or similarity < threshold:
                row["verdict"] = "not needed" if match is not None else "below threshold"
                continue
            if self.policy.decide(stored, llm_string).key != key:
                row["verdict"] = "unverified"
                self._count(trace, "unverified")
                continue
            found = differences(text_of(prompt), text_of(stored), self.config.guards, similarity)
            if found:
                row["verdict"], row["vetoes"] = "vetoed", found
                self._count(trace, "vetoed")
                for reason in found:
                    self._count(trace, f"veto_{reason}")
                continue
            row["verdict"] = "hit"
            match = SemanticMatch(key=key, similarity=similarity, prompt=stored)
        if match is None:
            if not scored or scored[0][0] < threshold:
                self._count(trace, "below_threshold")
            self._count(trace, "misses")
        else:
            self._count(trace, "hits")
            trace.doc["outcome"] = "hit"
        if trace.counting:
            self.latency.add(time.perf_counter() - start)
        return match

    def _decode(
        self, scope: str, entry_id: bytes, data: bytes, dim: int
    ) -> tuple[str, str, Vector] | None:
        """(answer key, prompt, vector) of a stored entry, or None if it is not a valid one."""
        try:
            fields = self.codec.decode(self._entry_key(scope, entry_id), data)
            key, prompt, vector, dtype = fields
            if not (
                isinstance(key, str)
                and isinstance(prompt, str)
                and isinstance(vector, str)
                and dtype in ("int8", "float16")
                and _entry_id(key) == entry_id
            ):
                return None
            values = decode_vector(base64.b64decode(vector, validate=True), dtype)
        except Exception:  # CodecError, wrong shape, bad base64: not ours
            return None
        return (key, prompt, values) if values.size == dim else None

    def _recall(self, prompt: str) -> Vector | None:
        digest = _prompt_digest(prompt)
        with self._lock:
            unit = self._vectors.get(digest)
            if unit is not None:
                self._vectors.move_to_end(digest)
            return unit

    def _remember(self, prompt: str, unit: Vector) -> Vector:
        with self._lock:
            self._vectors[_prompt_digest(prompt)] = unit
            while len(self._vectors) > _VECTORS_KEPT:
                self._vectors.popitem(last=False)
        return unit

    def _allow(self, trace: _Trace) -> bool:
        if self.guard.allow():
            return True
        self._count(trace, "store_errors")
        trace.doc["outcome"] = "store skipped: circuit open"
        return False

    def _embed_failed(self, exc: Exception, trace: _Trace | None, *, add: bool = False) -> None:
        self._count(trace, "embed_errors")
        if trace is not None:
            trace.doc["outcome"] = f"embedding failed: {type(exc).__name__}: {exc}"[:300]
        self.guard.note("embedding", exc, "no semantic match")
        if add:
            self._count(trace, "add_errors")

    def _store_failed(
        self, op: str, exc: Exception, trace: _Trace | None, *, add: bool = False
    ) -> None:
        self._count(trace, "add_errors" if add else "store_errors")
        if trace is not None:
            trace.doc["outcome"] = f"store failed: {type(exc).__name__}: {exc}"[:300]
        if trace is None or trace.counting:
            self.guard.fault(op, exc, "no semantic match")

    def __repr__(self) -> str:
        return f"SemanticLayer({self.backend!r}, {self.config!r})"


# -- helpers ----------------------------------------------------------------------------------
def _entry_id(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=_ID_BYTES).digest()


def _prompt_digest(prompt: str) -> bytes:
    return hashlib.blake2b(prompt.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _embeddings_id(embeddings: Any) -> str:
    cls = type(embeddings)
    name = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
    return f"{cls.__module__}.{cls.__qualname__}" + (f":{name}" if isinstance(name, str) else "")


async def _aembed(embeddings: Any, prompt: str) -> Any:
    method = getattr(embeddings, "aembed_query", None)
    if method is None:
        return await asyncio.to_thread(embeddings.embed_query, prompt)
    return await method(prompt)


async def _all(coros: Iterable[Coroutine[Any, Any, T] | Awaitable[T]]) -> list[T]:
    """Await all concurrently; on the first failure cancel the rest and raise that failure."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
