"""memory:// on its own: the LRU rule and URL options (the contract runs in test_contract.py)."""

from __future__ import annotations

import pytest

from llmcache.backends.memory import MemoryBackend, MemoryOptions
from llmcache.errors import ConfigError
from llmcache.registry import create_backend


def test_least_recently_used_entry_is_evicted() -> None:
    store = MemoryBackend(MemoryOptions(max_entries=2))
    store.set("a", b"1")
    store.set("b", b"2")
    assert store.get("a") == b"1"  # touch a: b is now the least recently used
    store.set("c", b"3")
    assert (store.get("a"), store.get("b"), store.get("c")) == (b"1", None, b"3")


def test_url_options_are_typed_and_checked() -> None:
    store = create_backend("memory://?max_entries=3&default_ttl=5")
    assert isinstance(store, MemoryBackend)
    assert (store.max_entries, store.default_ttl) == (3, 5.0)
    with pytest.raises(ConfigError, match=r"max_entires.*valid options: default_ttl, max_entries"):
        create_backend("memory://?max_entires=3")
    with pytest.raises(ConfigError, match=r"'lots'.*max_entries"):
        create_backend("memory://?max_entries=lots")
