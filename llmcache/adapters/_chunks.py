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

__all__ = ["MAX_ARGS_CHUNKS", "MAX_TEXT_CHUNKS", "as_chunks", "assemble", "replay"]

#: A replayed text is cut at word boundaries into at most this many chunks.
MAX_TEXT_CHUNKS = 32
_WORD = re.compile(r"\s*\S+\s*|\s+")


def _text_pieces(text: str) -> list[str]:
    words = _WORD.findall(text)
    if len(words) <= 1:
        return [text] if text else []
    per = -(-len(words) // MAX_TEXT_CHUNKS)  # ceil: words per chunk
    return ["".join(words[i : i + per]) for i in range(0, len(words), per)]


#: A replayed tool call's arguments are cut into at most this many chunks (as models stream them).
MAX_ARGS_CHUNKS = 4


def _pieces(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _tool_call_chunks(message: AIMessage) -> list[list[ToolCallChunk]]:
    """Per tool call, its chunks: the first names it (name, id), the rest carry more of its
    arguments under the same index — they merge back into the call."""
    calls: list[tuple[str | None, str | None, str | None]] = [
        (call["name"], json.dumps(call["args"], ensure_ascii=False), call.get("id"))
        for call in message.tool_calls
    ]
    # Calls whose arguments did not parse: the raw text again, so they stay invalid.
    calls += [
        (bad.get("name"), bad.get("args"), bad.get("id")) for bad in message.invalid_tool_calls
    ]
    out = []
    for index, (name, args, call_id) in enumerate(calls):
        pieces = _pieces(args, MAX_ARGS_CHUNKS) if args else [args]
        first = tool_call_chunk(name=name, args=pieces[0], id=call_id, index=index)
        rest = [tool_call_chunk(name=None, args=p, id=None, index=index) for p in pieces[1:]]
        out.append([first, *rest])
    return out


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
    for call in _tool_call_chunks(message):
        for part in call:
            chunk = AIMessageChunk(content=empty, id=message.id, tool_call_chunks=[part])
            yield ChatGenerationChunk(message=chunk)
    metadata = {**message.response_metadata, **(extra_metadata or {})}
    last = AIMessageChunk(
        content=empty,
        id=message.id,
        name=message.name,
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
