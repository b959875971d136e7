"""Momento lists for the backend's ``list_push`` / ``list_range`` (chat history).

``ListPushBack`` appends one element per request, with ``truncate_front_to_size`` (keep the
newest ``max_len``) and a ``CollectionTtl`` that renews the list's TTL on every push. Elements
above Momento's 128 KiB limit are refused before any request, so a push is never half-sent
for that reason. List names are ``str`` in the SDK (our full keys are).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from momento import CacheClient, CacheClientAsync
from momento.requests import CollectionTtl
from momento.responses import CacheListFetch, CacheListPushBack

from llmcache.backends.momento.sdk import MomentoError, raise_error

__all__ = ["MAX_ELEMENT_BYTES", "afetch", "apush", "check_elements", "fetch", "push"]

#: Momento's maximum size of one list element: 128 KiB, in bytes.
MAX_ELEMENT_BYTES = 128 * 1024


def check_elements(cache_name: str, values: Sequence[bytes]) -> list[bytes]:
    """``values`` as bytes, or a :class:`MomentoError` if one is above the element limit."""
    out = [bytes(v) for v in values]
    for value in out:
        if len(value) > MAX_ELEMENT_BYTES:
            raise MomentoError(
                f"momento list push on cache {cache_name!r} refused: element of {len(value)} "
                f"bytes exceeds Momento's {MAX_ELEMENT_BYTES}-byte (128 KiB) list element limit",
                "ELEMENT_SIZE_LIMIT_EXCEEDED",
            )
    return out


def push(
    client: CacheClient,
    cache_name: str,
    name: str,
    values: list[bytes],
    ttl: timedelta,
    max_len: int | None,
) -> None:
    for value in values:
        response = client.list_push_back(cache_name, name, value, **_push(ttl, max_len))
        _check_push(cache_name, response)


async def apush(
    client: CacheClientAsync,
    cache_name: str,
    name: str,
    values: list[bytes],
    ttl: timedelta,
    max_len: int | None,
) -> None:
    for value in values:  # in order: each push waits for the previous one
        response = await client.list_push_back(cache_name, name, value, **_push(ttl, max_len))
        _check_push(cache_name, response)


def _push(ttl: timedelta, max_len: int | None) -> dict[str, Any]:
    """ListPushBack's options: the whole list's ttl renewed by each push, trimmed to max_len."""
    return {"ttl": CollectionTtl(ttl, refresh_ttl=True), "truncate_front_to_size": max_len}


def _check_push(cache_name: str, response: object) -> None:
    if not isinstance(response, CacheListPushBack.Success):
        raise_error("list push", cache_name, response)


def _elements(cache_name: str, response: object) -> list[bytes]:
    if isinstance(response, CacheListFetch.Hit):
        return list(response.value_list_bytes)
    if not isinstance(response, CacheListFetch.Miss):
        raise_error("list fetch", cache_name, response)
    return []


def fetch(client: CacheClient, cache_name: str, name: str) -> list[bytes]:
    return _elements(cache_name, client.list_fetch(cache_name, name))


async def afetch(client: CacheClientAsync, cache_name: str, name: str) -> list[bytes]:
    return _elements(cache_name, await client.list_fetch(cache_name, name))
