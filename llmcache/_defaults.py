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
#: Single-flight: a leader's lease on a missing key (seconds), after which waiters stop waiting
#: and call the model themselves (the leader died, hung or failed), and how often they look.
LEASE_TTL: Final = 30.0
LEASE_POLL: Final = 0.05
#: Two tiers: the in-process L1's size (entries) and entry lifetime (seconds). The lifetime
#: bounds how long another process's ``clear`` or overwrite stays unseen here.
L1_MAX_ENTRIES: Final = 10_000
L1_TTL: Final = 30.0
