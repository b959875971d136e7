"""A tiny deterministic embedding for tests, examples and demos: hashed bag of words.

Each lower-cased word adds ±1 to one of ``dim`` coordinates chosen by its BLAKE2b digest, so two
prompts sharing most of their words are close in cosine, and nothing is downloaded. It is not a
language model: "car" and "automobile" are unrelated to it. Use a real LangChain ``Embeddings``
(a local sentence-transformers model, an API) in production.

Example::

    from llmcache.semantic import HashingEmbeddings

    emb = HashingEmbeddings(dim=256)
    assert emb.embed_query("Hello world") == emb.embed_query("hello, world!")
"""

from __future__ import annotations

import hashlib
import math
import re

__all__ = ["HashingEmbeddings"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class HashingEmbeddings:
    """LangChain's ``Embeddings`` interface (duck-typed): ``embed_query``/``embed_documents``
    and their async twins, ``dim`` floats per text, unit length (zero for a text with no word)."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.calls = 0  # embed_query calls (tests check one embedding per miss)

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dim
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._embed(text)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)
