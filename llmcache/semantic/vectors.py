"""Vectors as compact bytes, and the random hyperplanes every process agrees on.

- :func:`encode_vector` / :func:`decode_vector`: a unit vector as int8 (1 byte a dimension,
  scaled so the largest component is ±127; cosine is scale-free, so no scale is stored) or
  float16 (2 bytes a dimension).
- :func:`hyperplanes`: ``tables × bits`` Gaussian hyperplanes drawn from SHAKE-256 of a fixed
  seed (Box-Muller), not from numpy's generator, whose streams may change between numpy
  versions: two processes on different machines must hash a prompt into the same buckets.
- :func:`signature`: the sign bits of the projections, packed; the first ``bits`` bits are table
  0's bucket, and so on. The whole signature ranks candidates by Hamming distance before any
  vector is fetched.

Example::

    import numpy as np
    from llmcache.semantic.vectors import decode_vector, encode_vector

    v = np.array([0.6, -0.8, 0.0])
    data = encode_vector(v, "int8")
    assert len(data) == 3 and abs(float(np.dot(decode_vector(data, "int8"), v)) - 1) < 0.01
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_DIM",
    "VectorDtype",
    "as_unit",
    "cosine",
    "decode_vector",
    "encode_vector",
    "hamming",
    "hyperplanes",
    "plane_norms",
    "signature",
]

VectorDtype = Literal["int8", "float16"]
Vector = npt.NDArray[np.float32]
#: Largest embedding size accepted (OpenAI's text-embedding-3-large has 3072).
MAX_DIM = 16_384
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def as_unit(values: object) -> Vector:
    """``values`` (a sequence of floats) as a unit float32 vector; ``ValueError`` if it is empty,
    too long, not finite or zero."""
    vector = np.asarray(values, dtype=np.float64)
    if vector.ndim != 1 or not 0 < vector.size <= MAX_DIM:
        raise ValueError(f"an embedding must be 1 to {MAX_DIM} numbers, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("an embedding holds a non-finite number")
    norm = float(np.linalg.norm(vector))
    if not norm > 0:
        raise ValueError("an embedding of length zero has no direction")
    unit: Vector = (vector / norm).astype(np.float32)
    return unit


def encode_vector(unit: Vector, dtype: VectorDtype) -> bytes:
    """``unit`` as ``dtype`` bytes (little-endian float16, or int8 scaled to ±127)."""
    if dtype == "float16":
        return unit.astype("<f2").tobytes()
    peak = float(np.max(np.abs(unit)))
    scaled = np.rint(unit * (127.0 / peak)) if peak > 0 else np.zeros_like(unit)
    return scaled.astype(np.int8).tobytes()


def decode_vector(data: bytes, dtype: VectorDtype) -> Vector:
    """The vector :func:`encode_vector` wrote (not normalised: use :func:`cosine`)."""
    raw = np.frombuffer(data, dtype="<f2" if dtype == "float16" else np.int8)
    decoded: Vector = raw.astype(np.float32)
    return decoded


def cosine(unit: Vector, other: Vector) -> float:
    """Cosine similarity of the unit vector ``unit`` with any vector ``other`` (0 if mismatched)."""
    if other.shape != unit.shape:
        return 0.0
    norm = float(np.linalg.norm(other))
    if not norm > 0 or not math.isfinite(norm):
        return 0.0
    return float(np.dot(unit, other)) / norm


@lru_cache(maxsize=16)
def hyperplanes(seed: int, count: int, dim: int) -> Vector:
    """``count`` Gaussian hyperplanes of ``dim`` dimensions, the same in every process."""
    n = count * dim
    stream = hashlib.shake_256(f"llmcache-lsh:{seed}:{count}:{dim}".encode()).digest(8 * n)
    words = np.frombuffer(stream, dtype="<u8")
    # 53 random bits per uniform in (0, 1]: never 0, so the logarithm is finite.
    uniforms = ((words >> np.uint64(11)).astype(np.float64) + 1.0) / float(2**53)
    half = (n + 1) // 2
    u1, u2 = uniforms[:half], uniforms[half : 2 * half]
    if u2.size < half:  # odd n: one more pair than words
        u2 = np.concatenate([u2, uniforms[:1]])
    radius = np.sqrt(-2.0 * np.log(u1))
    normals = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    planes: Vector = normals[:n].reshape(count, dim).astype(np.float32)
    planes.setflags(write=False)
    return planes


@lru_cache(maxsize=16)
def plane_norms(seed: int, count: int, dim: int) -> Vector:
    """The length of each of :func:`hyperplanes`' planes (a lookup's probes divide by them)."""
    norms: Vector = np.linalg.norm(hyperplanes(seed, count, dim), axis=1).astype(np.float32)
    norms.setflags(write=False)
    return norms


def signature(unit: Vector, planes: Vector) -> npt.NDArray[np.bool_]:
    """The sign bits of ``unit``'s projections on ``planes`` (one bool per hyperplane)."""
    bits: npt.NDArray[np.bool_] = (planes @ unit) > 0
    return bits


def hamming(query: bytes, others: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    """Hamming distance between the packed signature ``query`` and each row of ``others``."""
    diff = np.bitwise_xor(others, np.frombuffer(query, dtype=np.uint8))
    counts: npt.NDArray[np.uint16] = _popcount(diff).sum(axis=1, dtype=np.uint16)
    return counts


def _table_popcount(values: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    counts: npt.NDArray[np.uint16] = _POPCOUNT[values]
    return counts


# numpy >= 2 counts bits in one ufunc (a third of the table lookup's time); 1.26 has no such ufunc
_popcount: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.integer[Any]]] = getattr(
    np, "bitwise_count", _table_popcount
)
