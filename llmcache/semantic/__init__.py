"""The opt-in semantic layer: paraphrases served from a plain key-value store, with no false hits.

- :mod:`llmcache.semantic.index`: :class:`SemanticLayer` (an LSH index in the cache's own store:
  ``find`` on an exact miss, ``add`` after an exact update), :class:`SemanticConfig`,
  :class:`SemanticMatch`;
- :mod:`llmcache.semantic.guards`: the false-hit vetoes (negation, antonym, number, date,
  entity, quoted literal, unit, direction, swap);
- :mod:`llmcache.semantic.vectors`: compact vectors (int8, float16) and the shared hyperplanes;
- :mod:`llmcache.semantic.hashing`: :class:`HashingEmbeddings`, a deterministic bag-of-words
  embedding for tests and examples.

Needs ``numpy`` (and an embeddings object: any LangChain ``Embeddings``). See docs/semantic.md.

Example::

    from llmcache.backends.memory import MemoryBackend
    from llmcache.semantic import HashingEmbeddings, SemanticConfig, SemanticLayer

    layer = SemanticLayer(MemoryBackend(), HashingEmbeddings(), SemanticConfig(threshold=0.8))
"""

from __future__ import annotations

try:
    import numpy  # noqa: F401
except ImportError:  # pragma: no cover - numpy is in the dev environment
    from llmcache.errors import ConfigError, install_line

    raise ConfigError(
        f"the semantic layer needs numpy: {install_line('semantic')} (or numpy)"
    ) from None

from llmcache.semantic.guards import ALL_GUARDS, DEFAULT_GUARDS, differences, vetoes
from llmcache.semantic.hashing import HashingEmbeddings
from llmcache.semantic.index import COUNTERS, SemanticConfig, SemanticLayer, SemanticMatch

__all__ = [
    "ALL_GUARDS",
    "COUNTERS",
    "DEFAULT_GUARDS",
    "HashingEmbeddings",
    "SemanticConfig",
    "SemanticLayer",
    "SemanticMatch",
    "differences",
    "vetoes",
]
