"""Every default llmcache uses, defined once (settings, constructors and CLI options read these)."""

from __future__ import annotations

from typing import Final

#: Entry lifetime, seconds: one day, long enough to pay off, short enough for models to change.
TTL: Final = 86_400.0
#: zlib-compress stored values at least this many bytes (smaller ones rarely shrink).
COMPRESS_MIN_BYTES: Final = 1024
#: Decoded values larger than this are refused (a miss): a decompression bomb cannot exhaust
#: memory. 32 MiB is far above any real LLM answer (a long answer is ~100 KB).
MAX_DECODED_BYTES: Final = 32 * 1024 * 1024
#: Circuit breaker: faults in a row that open it, and seconds before one caller probes again.
BREAKER_FAILURES: Final = 5
BREAKER_COOLDOWN: Final = 10.0
#: Namespace of caches built without one.
NAMESPACE: Final = "default"
