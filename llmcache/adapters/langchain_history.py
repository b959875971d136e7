"""LangChain adapter: chat message history on a backend's lists (memory, disk, Redis, Momento).

Example::

    from langchain_core.runnables.history import RunnableWithMessageHistory
    from llmcache.adapters.langchain import LangChainChatHistory

    chain_with_history = RunnableWithMessageHistory(
        chain,
        lambda session_id: LangChainChatHistory.from_url(
            "redis://localhost:6379/0", session_id=session_id, max_messages=50
        ),
        input_messages_key="question",
        history_messages_key="history",
    )

A session is one list in the store: each message one element, JSON through the same allowlist of
message types as the LLM cache (never LangChain's ``loads``). ``add_messages`` appends them in one
step (Redis MULTI, disk transaction; Momento one request per message), trims the oldest beyond
``max_messages`` and renews the session's TTL.

With an encryption key (``encryption_key=`` or the ``encryption_key`` setting) every element is
sealed with AES-256-GCM under the session id, and only sealed elements are read back.

History is state, not a cache: a store fault raises :class:`~llmcache.errors.BackendError` to the
caller (a chat that silently forgot its past would answer wrongly). An element that does not
decode (written by another client, corrupt) is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Self

import orjson
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from llmcache import _defaults
from llmcache._guard import check_ttl
from llmcache.adapters._generations import message_from_json, message_to_json
from llmcache.backends import capabilities as cap
from llmcache.backends.base import Backend
from llmcache.codec import Codec
from llmcache.config import Settings, encryption_keys, load_settings
from llmcache.errors import CodecError, ConfigError
from llmcache.registry import backend_from_settings, create_backend

__all__ = ["DEFAULT_NAMESPACE", "LangChainChatHistory"]

log = logging.getLogger("llmcache")

#: Namespace of ``from_url`` histories; ``from_settings`` uses ``<namespace setting>.history``.
DEFAULT_NAMESPACE = "chat-history"


class LangChainChatHistory(BaseChatMessageHistory):
    """LangChain ``BaseChatMessageHistory`` of one session, with native async.

    ``ttl``: seconds a session lives after its last ``add_messages`` (default one day, Momento's
    maximum; ``None``: the backend's default). ``max_messages``: keep only the newest N.
    ``codec``: a :class:`~llmcache.codec.Codec` with encryption keys seals every element.
    """

    def __init__(
        self,
        backend: Backend,
        session_id: str,
        *,
        ttl: float | None = _defaults.TTL,
        max_messages: int | None = None,
        codec: Codec | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ConfigError(f"invalid session_id {session_id!r}: a non-empty string")
        check_ttl(ttl)
        if max_messages is not None and (isinstance(max_messages, bool) or max_messages < 1):
            raise ConfigError(f"invalid max_messages {max_messages!r}: a positive integer or None")
        self.backend = backend
        #: Stored elements that did not decode into a message (skipped, never raised).
        self.skipped_messages = 0
        self._lists = cap.require(backend, cap.Lists, "keep chat history (no list operations)")
        self.session_id = session_id
        self.ttl = ttl
        self.max_messages = max_messages
        # Only an encrypting codec is used: plain elements stay plain JSON, readable by any client.
        self._sealer = codec if codec is not None and codec.encrypts else None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        session_id: str,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: float | None = _defaults.TTL,
        max_messages: int | None = None,
        encryption_key: str | None = None,
        **options: Any,
    ) -> Self:
        """The history of ``session_id`` on the backend named by ``url``.

        Secrets as in :meth:`llmcache.LLMCache.from_url`: the URL or keywords here; the
        environment (``LLMCACHE_REDIS_PASSWORD``, ``LLMCACHE_MOMENTO_API_KEY``) via
        ``from_settings``.
        """
        codec = Codec(encryption_keys=[encryption_key]) if encryption_key else None
        backend = create_backend(url, namespace=namespace, **options)
        return cls(backend, session_id, ttl=ttl, max_messages=max_messages, codec=codec)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        session_id: str,
        namespace: str | None = None,
        max_messages: int | None = None,
    ) -> Self:
        """The history of ``session_id`` on the store :class:`~llmcache.Settings` describe,
        in ``<namespace>.history``, with the ``ttl`` setting."""
        settings = settings or load_settings()
        backend = backend_from_settings(
            settings, namespace=namespace or f"{settings.namespace}.history"
        )
        codec = Codec(encryption_keys=encryption_keys(settings))
        return cls(backend, session_id, ttl=settings.ttl, max_messages=max_messages, codec=codec)

    # -- sync ---------------------------------------------------------------------------------
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # read from the store
        """The session's messages, oldest first (read from the store on every access)."""
        return self._decode(self._lists.list_range(self.session_id))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` to the session (all or none are encoded before the write)."""
        values = self._encode(messages)
        if values:
            self._lists.list_push(self.session_id, values, max_len=self.max_messages, ttl=self.ttl)

    def clear(self) -> None:
        """Remove the session's messages."""
        self.backend.delete(self.session_id)

    # -- async (the backend's native async path) ----------------------------------------------
    async def aget_messages(self) -> list[BaseMessage]:
        return self._decode(await self._lists.alist_range(self.session_id))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        values = self._encode(messages)
        if values:
            await self._lists.alist_push(
                self.session_id, values, max_len=self.max_messages, ttl=self.ttl
            )

    async def aclear(self) -> None:
        await self.backend.adelete(self.session_id)

    def close(self) -> None:
        """Close the backend (histories built by ``from_url`` each own one)."""
        self.backend.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self.backend.aclose()

    # -- internals ----------------------------------------------------------------------------
    def _encode(self, messages: Sequence[BaseMessage]) -> list[bytes]:
        # A message type outside the allowlist is a CodecError before anything is written.
        if self._sealer is not None:
            return [self._sealer.encode(self.session_id, message_to_json(m)) for m in messages]
        return [_dumps(message_to_json(m)) for m in messages]

    def _decode(self, values: list[bytes]) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        for value in values:
            try:
                if self._sealer is not None:
                    data = self._sealer.decode(self.session_id, value)
                else:
                    data = _loads(value)
                out.append(message_from_json(data))
            except Exception as exc:  # CodecError, JSONDecodeError, a forged shape: skip it
                self.skipped_messages += 1
                log.warning(
                    "llmcache: skipping a message of session %r that does not decode: %s",
                    self.session_id,
                    exc,
                )
        return out

    def __repr__(self) -> str:
        return f"LangChainChatHistory({self.backend!r}, session_id={self.session_id!r})"


def _dumps(data: Any) -> bytes:
    """orjson; the stdlib for text orjson refuses (a lone surrogate: the message is kept)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        try:
            return json.dumps(data).encode()
        except (TypeError, ValueError) as exc:
            raise CodecError(f"chat message is not JSON-serialisable: {exc}") from exc


def _loads(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)  # what _dumps wrote with the stdlib (escaped surrogates)
