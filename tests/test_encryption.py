"""Client-side encryption: what leaves the process is sealed, and only sealed values are served."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from llmcache import CodecError, ConfigError, LLMCache, Settings, from_settings
from llmcache.backends.memory import MemoryBackend
from llmcache.cli import app
from llmcache.codec import Codec, new_encryption_key

LLM = "[('_type', 'fake-model')]"
SECRET_ANSWER = "The merger with Initech closes on 3 March."


def sealed_cache(backend: MemoryBackend, *keys: str) -> LLMCache:
    return LLMCache(backend, codec=Codec(encryption_keys=keys))


def test_the_store_never_sees_the_answer() -> None:
    backend, key = MemoryBackend(), new_encryption_key()
    cache = sealed_cache(backend, key)
    cache.update("When does the merger close?", LLM, {"text": SECRET_ANSWER * 40})
    stored = b"".join(v for v, _ in backend._data.values())
    assert b"Initech" not in stored and b"merger" not in stored
    assert cache.lookup("When does the merger close?", LLM) == {"text": SECRET_ANSWER * 40}


def test_without_the_key_or_with_another_it_is_a_miss() -> None:
    backend = MemoryBackend()
    sealed_cache(backend, new_encryption_key()).update("q", LLM, {"text": SECRET_ANSWER})
    for reader in (LLMCache(backend), sealed_cache(backend, new_encryption_key())):
        assert reader.lookup("q", LLM) is None
        assert reader.stats["decode_errors"] == 1


def test_plaintext_injected_into_the_store_is_refused() -> None:
    backend, key = MemoryBackend(), new_encryption_key()
    LLMCache(backend).update("q", LLM, {"text": "planted answer"})  # a client without the key
    assert sealed_cache(backend, key).lookup("q", LLM) is None


def test_tampered_or_moved_values_fail_authentication() -> None:
    codec = Codec(encryption_keys=[new_encryption_key()])
    data = codec.encode("k1", {"text": "x"})
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CodecError, match="authentication"):
        codec.decode("k1", flipped)
    with pytest.raises(CodecError, match="another key"):
        codec.decode("k2", data)


def test_rotation_reads_old_entries_and_writes_with_the_new_key() -> None:
    backend, old, new = MemoryBackend(), new_encryption_key(), new_encryption_key()
    sealed_cache(backend, old).update("q", LLM, "written with the old key")
    rotated = sealed_cache(backend, new, old)
    assert rotated.lookup("q", LLM) == "written with the old key"
    rotated.update("q2", LLM, "written with the new key")
    assert sealed_cache(backend, new).lookup("q2", LLM) == "written with the new key"
    assert sealed_cache(backend, old).lookup("q2", LLM) is None


def test_settings_and_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))
    result = CliRunner().invoke(app, ["new-key"])
    key = result.output.strip()
    assert result.exit_code == 0 and len(key) == 44
    monkeypatch.setenv("LLMCACHE_URL", "memory://")
    monkeypatch.setenv("LLMCACHE_ENCRYPTION_KEY", key)
    cache = from_settings()
    assert cache.codec.encrypts
    assert key not in repr(Settings())


def test_bad_key_or_missing_library_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="URL-safe base64") as info:
        Codec(encryption_keys=["hunter2"])
    assert "hunter2" not in str(info.value)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(ConfigError, match=r"llmcache-kit\[encryption\]"):
        Codec(encryption_keys=[new_encryption_key()])


def test_chat_history_is_sealed_per_session() -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from llmcache.adapters.langchain import LangChainChatHistory

    backend, key = MemoryBackend(namespace="chat-history"), new_encryption_key()
    codec = Codec(encryption_keys=[key])
    history = LangChainChatHistory(backend, "alice", codec=codec)
    history.add_messages([HumanMessage("my card is 4111"), AIMessage("noted")])
    raw = backend.list_range("alice")
    assert len(raw) == 2 and not any(b"4111" in element for element in raw)
    assert [m.content for m in history.messages] == ["my card is 4111", "noted"]
    # Without the key, or under another session id, nothing is readable.
    assert LangChainChatHistory(backend, "alice").messages == []
    backend.list_push("bob", raw)
    assert LangChainChatHistory(backend, "bob", codec=codec).messages == []
