"""Entries ⇄ bytes: a small versioned envelope around JSON, optionally compressed and encrypted.

Layout of a stored value::

    b"LC" | format (1 byte) | flags (1 byte) | key check (8 bytes) | [written at (8 bytes)] | body
    body, when encrypted: key id (4 bytes) | nonce (12 bytes) | AES-256-GCM(ciphertext + tag)

- *format* is :data:`FORMAT`; bytes written by a newer format decode to a miss, not a guess.
- *flags*: bit 0 = body is zlib-compressed; bit 1 = body is encrypted; bit 2 = the header
  holds the write time (milliseconds since the Unix epoch, unsigned big-endian), from which a
  hit's age is read (``max_age``, the hit flag's ``age_s``). Values written before bit 2 existed
  have no age.
- *key check* is a digest of the key the value was written under, so a value copied or
  misrouted to another key decodes to a miss instead of a wrong answer.
- *body* is JSON (orjson). Never pickle: a shared store must not be a code-execution channel.
- With encryption keys, the body is compressed, then sealed with AES-256-GCM; the header is the
  associated data, so a value moved to another cache key fails authentication. Such a codec
  accepts only values it can authenticate: plaintext in the store is a miss.

Example::

    from llmcache.codec import Codec

    codec = Codec()
    data = codec.encode("v1:abc", [{"text": "hi"}])
    assert codec.decode("v1:abc", data) == [{"text": "hi"}]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import time
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from llmcache import _defaults
from llmcache.errors import CodecError, ConfigError, install_line

__all__ = ["FORMAT", "MAGIC", "Codec", "new_encryption_key", "written_at"]

MAGIC = b"LC"
FORMAT = 1
_FLAG_ZLIB = 0x01
_FLAG_AES = 0x02
_FLAG_TIME = 0x04
_KNOWN_FLAGS = _FLAG_ZLIB | _FLAG_AES | _FLAG_TIME
_HEADER = len(MAGIC) + 2 + 8
_TIME = struct.Struct(">Q")  # write time, ms since the epoch
_KEY_ID = 4
_NONCE = 12  # AES-GCM's standard nonce; random per value (2^32 values per key stay far from reuse)
# LLM answers are text: zlib at level 6 takes 20 KB of chat JSON to about a third, costing tens of
# microseconds; smaller values are not worth the CPU (and barely shrink).
DEFAULT_COMPRESS_MIN_BYTES = _defaults.COMPRESS_MIN_BYTES


def _key_check(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=8).digest()


def new_encryption_key() -> str:
    """A fresh random 256-bit key, URL-safe base64 (the form ``encryption_key`` takes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _parse_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # Never echo the value: it is (meant to be) a secret.
        raise ConfigError(
            "invalid encryption_key: expected 32 random bytes in URL-safe base64 (44 characters); "
            "make one with `llmcache new-key`"
        )
    return raw


class Codec:
    """Encodes JSON-able payloads into the envelope and back.

    ``encryption_keys``: URL-safe base64 256-bit keys; the first encrypts, all decrypt (rotation:
    put the new key first and keep the old ones until their entries expire).
    ``max_decoded_bytes``: a value whose body is (or decompresses to) more is refused, so a
    decompression bomb in the store costs a miss, not the process's memory.
    """

    def __init__(
        self,
        *,
        compress_min_bytes: int | None = DEFAULT_COMPRESS_MIN_BYTES,
        level: int = 6,
        encryption_keys: Sequence[str] = (),
        max_decoded_bytes: int = _defaults.MAX_DECODED_BYTES,
    ) -> None:
        if isinstance(max_decoded_bytes, bool) or max_decoded_bytes < 1:
            raise ConfigError(f"invalid max_decoded_bytes {max_decoded_bytes!r}: a positive int")
        self.max_decoded_bytes = max_decoded_bytes
        self.compress_min_bytes = compress_min_bytes
        self.level = level
        self._ciphers: dict[bytes, Any] = {}
        self._write_id = b""
        if encryption_keys:
            try:
                from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            except ImportError:
                raise ConfigError(
                    "encryption_key needs the 'cryptography' package: " + install_line("encryption")
                ) from None
            for i, text in enumerate(encryption_keys):
                raw = _parse_key(text)
                key_id = hashlib.blake2b(raw, digest_size=_KEY_ID, person=b"llmcache-kid").digest()
                self._ciphers[key_id] = AESGCM(raw)
                if i == 0:
                    self._write_id = key_id

    @property
    def encrypts(self) -> bool:
        """Whether values are sealed (and unsealed values refused)."""
        return bool(self._ciphers)

    def encode(self, key: str, payload: Any, *, written_at: float | None = None) -> bytes:
        """Serialise ``payload`` (JSON types only) for storage under ``key``.

        ``written_at`` (seconds since the epoch, default now) goes into the header: see
        :func:`written_at`.
        """
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:  # orjson.JSONEncodeError: sets, Decimals, lone surrogates, ...
            raise CodecError(f"value is not JSON-serialisable: {exc}") from exc
        if len(body) > self.max_decoded_bytes:
            raise CodecError(
                f"value of {len(body)} bytes is over max_decoded_bytes={self.max_decoded_bytes}"
            )
        flags = _FLAG_TIME
        stamp = _TIME.pack(max(0, int((time.time() if written_at is None else written_at) * 1e3)))
        if self.compress_min_bytes is not None and len(body) >= self.compress_min_bytes:
            packed = zlib.compress(body, self.level)
            if len(packed) < len(body):
                body, flags = packed, flags | _FLAG_ZLIB
        if self._ciphers:
            flags |= _FLAG_AES
            header = MAGIC + bytes((FORMAT, flags)) + _key_check(key) + stamp + self._write_id
            nonce = os.urandom(_NONCE)
            sealed: bytes = self._ciphers[self._write_id].encrypt(nonce, body, header)
            return header + nonce + sealed
        return MAGIC + bytes((FORMAT, flags)) + _key_check(key) + stamp + body

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
        start = _HEADER + (_TIME.size if flags & _FLAG_TIME else 0)
        if len(data) < start:
            raise CodecError("not an llmcache value (truncated header)")
        body = data[start:]
        if flags & _FLAG_AES:
            body = self._unseal(data, start)
        elif self._ciphers:
            raise CodecError("value is not encrypted, and this cache accepts only sealed values")
        try:
            if flags & _FLAG_ZLIB:
                body = self._inflate(body)
            elif len(body) > self.max_decoded_bytes:
                raise CodecError(f"value is over max_decoded_bytes={self.max_decoded_bytes}")
            return orjson.loads(body)
        except (zlib.error, orjson.JSONDecodeError) as exc:
            raise CodecError(f"corrupt value: {exc}") from exc

    def _inflate(self, body: bytes) -> bytes:
        """zlib-decompress at most ``max_decoded_bytes`` (more is a bomb, or not ours)."""
        inflater = zlib.decompressobj()
        out = inflater.decompress(body, self.max_decoded_bytes + 1)
        if len(out) > self.max_decoded_bytes or inflater.unconsumed_tail:
            raise CodecError(
                f"value decompresses to more than max_decoded_bytes={self.max_decoded_bytes}"
            )
        if not inflater.eof:
            raise CodecError("corrupt value: truncated zlib stream")
        return out

    def _unseal(self, data: bytes, start: int) -> bytes:
        if not self._ciphers:
            raise CodecError("value is encrypted and no encryption_key is configured")
        header_end = start + _KEY_ID
        cipher = self._ciphers.get(data[start:header_end])
        if cipher is None:
            raise CodecError("value is encrypted with a key this cache does not have")
        nonce = data[header_end : header_end + _NONCE]
        try:
            body: bytes = cipher.decrypt(nonce, data[header_end + _NONCE :], data[:header_end])
        except Exception as exc:  # cryptography's InvalidTag: tampered, truncated or misplaced
            raise CodecError("encrypted value fails authentication") from exc
        return body


def written_at(data: bytes) -> float | None:
    """When ``data`` was written (seconds since the epoch), from its header; None if unknown.

    Read the header only after :meth:`Codec.decode` accepted the value: for encrypted values the
    header is authenticated there. Never raises.
    """
    if len(data) < _HEADER + _TIME.size or data[:2] != MAGIC or not data[3] & _FLAG_TIME:
        return None
    stamp: int = _TIME.unpack_from(data, _HEADER)[0]
    return stamp / 1e3
