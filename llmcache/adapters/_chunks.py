"""A stored chat answer replayed as stream chunks, and a stream assembled into an answer.

A hit on ``stream()`` must look like a live model to a UI: several chunks, text first, tool-call
chunks and usage last, and the chunks must add up to the very message that was stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

__all__ = ["MAX_TEXT_CHUNKS", "as_chunks", "assemble", "replay"]

#: A replayed text is cut at word boundaries into at most this many chunks.
MAX_TEXT_CHUNKS = 32
_WORD = re.compile(r"\s*\S+\s*|\s+")


def _text_pieces(text: str) -> list[str]:
    words = _WORD.findall(text)
    if len(words) <= 1:
        return [text] if text else []
    per = -(-len(words) // MAX_TEXT_CHUNKS)  # ceil: words per chunk
    return ["".join(words[i : i + per]) for i in range(0, len(words), per)]


def _tool_call_chunks(message: AIMessage) -> list[ToolCallChunk]:
    chunks = [
        tool_call_chunk(
            name=call["name"],
            args=json.dumps(call["args"], ensure_ascii=False),
            id=call.get("id"),
            index=i,
        )
        for i, call in enumerate(message.tool_calls)
    ]
    # Calls whose arguments did not parse: the raw text again, so they stay invalid.
    start = len(chunks)
    for i, bad in enumerate(message.invalid_tool_calls):
        chunks.append(
            tool_call_chunk(
                name=bad.get("name"), args=bad.get("args"), id=bad.get("id"), index=start + i
            )
        )
    return chunks


def replay(
    message: BaseMessage, extra_metadata: dict[str, Any] | None = None
) -> Iterator[ChatGenerationChunk]:
    """``message`` as stream chunks that add up to it (plus ``extra_metadata`` on the last)."""
    if not isinstance(message, AIMessage):  # a generic chat message: one chunk is the honest form
        yield ChatGenerationChunk(message=AIMessageChunk(content=message.content, id=message.id))
        return
    content = message.content
    if isinstance(content, str):
        for piece in _text_pieces(content):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece, id=message.id))
        empty: str | list[str | dict[str, Any]] = ""
    else:
        for block in content:
            yield ChatGenerationChunk(message=AIMessageChunk(content=[block], id=message.id))
        empty = []
    metadata = {**message.response_metadata, **(extra_metadata or {})}
    last = AIMessageChunk(
        content=empty,
        id=message.id,
        name=message.name,
        tool_call_chunks=_tool_call_chunks(message),
        usage_metadata=message.usage_metadata,
        response_metadata=metadata,
        additional_kwargs=message.additional_kwargs,
        chunk_position="last",
    )
    yield ChatGenerationChunk(message=last)


def assemble(chunks: Sequence[BaseMessageChunk]) -> ChatGeneration | None:
    """The answer a complete stream of ``chunks`` amounts to; None for an empty stream."""
    if not chunks:
        return None
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return ChatGeneration(message=message_chunk_to_message(total))


def as_chunks(item: BaseMessage) -> Iterator[ChatGenerationChunk]:
    """What a model's ``stream()`` yielded, as chunks: a model that cannot stream yields its
    whole message once, which is then cut as a replay would be."""
    if isinstance(item, BaseMessageChunk):
        yield ChatGenerationChunk(message=item)
    else:
        yield from replay(item)
