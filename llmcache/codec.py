"""Entries ⇄ bytes: a small versioned envelope around JSON, optionally compressed.

Layout of a stored value::

    b"LC" | format (1 byte) | flags (1 byte) | key check (8 bytes) | body

- *format* is :data:`FORMAT`; bytes written by a newer format decode to a miss, not a guess.
- *flags*: bit 0 = body is zlib-compressed.
- *key check* is a digest of the key the value was written under, so a value copied or
  misrouted to another key decodes to a miss instead of a wrong answer.
- *body* is JSON (orjson). Never pickle: a shared store must not be a code-execution channel.

Example::

    from llmcache.codec import Codec

    codec = Codec()
    data = codec.encode("v1:abc", [{"text": "hi"}])
    assert codec.decode("v1:abc", data) == [{"text": "hi"}]
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import orjson

from llmcache.errors import CodecError

__all__ = ["FORMAT", "MAGIC", "Codec"]

MAGIC = b"LC"
FORMAT = 1
_FLAG_ZLIB = 0x01
_KNOWN_FLAGS = _FLAG_ZLIB
_HEADER = len(MAGIC) + 2 + 8
# LLM answers are text: zlib at level 6 takes 20 KB of chat JSON to about a third, costing tens of
# microseconds; smaller values are not worth the CPU (and barely shrink).
DEFAULT_COMPRESS_MIN_BYTES = 1024


def _key_check(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=8).digest()


class Codec:
    """Encodes JSON-able payloads into the envelope and back."""

    def __init__(
        self, *, compress_min_bytes: int | None = DEFAULT_COMPRESS_MIN_BYTES, level: int = 6
    ) -> None:
        self.compress_min_bytes = compress_min_bytes
        self.level = level

    def encode(self, key: str, payload: Any) -> bytes:
        """Serialise ``payload`` (JSON types only) for storage under ``key``."""
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:
            raise CodecError(f"value is not JSON-serialisable: {exc}") from exc
        flags = 0
        if self.compress_min_bytes is not None and len(body) >= self.compress_min_bytes:
            packed = zlib.compress(body, self.level)
            if len(packed) < len(body):
                body, flags = packed, flags | _FLAG_ZLIB
        return MAGIC + bytes((FORMAT, flags)) + _key_check(key) + body

    def decode(self, key: str, data: bytes) -> Any:
        """The payload stored in ``data`` under ``key``; :class:`CodecError` if it is not ours."""
        if len(data) < _HEADER or data[:2] != MAGIC:
            raise CodecError("not an llmcache value (bad magic or too short)")
        fmt, flags = data[2], data[3]
        if fmt != FORMAT:
            raise CodecError(f"value has format {fmt}, this llmcache reads format {FORMAT}")
        if flags & ~_KNOWN_FLAGS:
            raise CodecError(f"value has unknown flags {flags:#04x}")
        if data[4:_HEADER] != _key_check(key):
            raise CodecError("value was written under another key")
        body = data[_HEADER:]
        try:
            if flags & _FLAG_ZLIB:
                body = zlib.decompress(body)
            return orjson.loads(body)
        except (zlib.error, orjson.JSONDecodeError) as exc:
            raise CodecError(f"corrupt value: {exc}") from exc
