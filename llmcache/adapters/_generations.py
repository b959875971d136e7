"""LangChain generations and messages ⇄ JSON, by an explicit allowlist of types.

LangChain's own ``loads`` instantiates whatever class the data names (CVE-2025-68664 was an
injection through it). A shared cache is written by many clients, so we decode only the
generation and message types below, by a ``type`` tag, through their pydantic constructors.

Decoding is total: whatever JSON the store holds, the result is a valid, non-empty answer or a
:class:`~llmcache.errors.CodecError` (a miss), never another exception in the caller's call.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)

from llmcache.errors import CodecError

__all__ = [
    "generations_from_json",
    "generations_to_json",
    "message_from_json",
    "message_to_json",
]

_MESSAGES: dict[str, type[BaseMessage]] = {
    "ai": AIMessage,
    "AIMessageChunk": AIMessageChunk,
    "human": HumanMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "chat": ChatMessage,
    "function": FunctionMessage,
}
# Most specific first: isinstance picks the first match when encoding.
_GENERATIONS: dict[str, type[Generation]] = {
    "ChatGenerationChunk": ChatGenerationChunk,
    "ChatGeneration": ChatGeneration,
    "GenerationChunk": GenerationChunk,
    "Generation": Generation,
}


def message_to_json(message: BaseMessage) -> dict[str, Any]:
    """JSON-able form of a message of an allowlisted type (all fields, ``type`` as the tag)."""
    if message.type not in _MESSAGES:
        raise CodecError(f"cannot store message of type {message.type!r}")
    return message.model_dump(mode="json", exclude_defaults=True) | {"type": message.type}


# Messages a model answers with: a cached generation holding a human or tool message is forged.
_ANSWER_MESSAGES = frozenset({"ai", "AIMessageChunk", "chat"})


def message_from_json(data: Any) -> BaseMessage:
    """Rebuild a message from :func:`message_to_json` output; :class:`CodecError` if odd."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise CodecError("stored message is not an object with a type")
    cls = _MESSAGES.get(data["type"])
    if cls is None:
        raise CodecError(f"stored message has unknown type {data['type']!r}")
    try:
        message = cls.model_validate(data)
        # Touch what LangChain reads on a hit: odd shapes fail here, not in the caller's call.
        _check_message(message)
    except Exception as exc:  # ValidationError, and validators' own Attribute/TypeErrors
        raise CodecError(f"stored message does not decode: {type(exc).__name__}") from exc
    return message


def _check_message(message: BaseMessage) -> None:
    if not isinstance(message.content, str | list):
        raise TypeError("content")
    if isinstance(message.content, list) and not all(
        isinstance(block, str | dict) for block in message.content
    ):
        raise TypeError("content blocks")
    if not isinstance(message.additional_kwargs, dict) or not isinstance(
        message.response_metadata, dict
    ):
        raise TypeError("metadata")
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            if not (isinstance(call, dict) and isinstance(call.get("args"), dict)):
                raise TypeError("tool_calls")
        _ = message.text  # content blocks LangChain will render


def generations_to_json(generations: list[Generation]) -> list[dict[str, Any]]:
    """JSON-able form of a model's generations (text, generation_info, full message)."""
    out: list[dict[str, Any]] = []
    for gen in generations:
        tag = next((t for t, cls in _GENERATIONS.items() if isinstance(gen, cls)), None)
        if tag is None:
            raise CodecError(f"cannot cache generation of type {type(gen).__name__}")
        item: dict[str, Any] = {"t": tag}
        if gen.generation_info:
            item["info"] = gen.generation_info
        message = getattr(gen, "message", None)
        if isinstance(message, BaseMessage):
            item["m"] = message_to_json(message)
        else:
            item["text"] = gen.text
        out.append(item)
    return out


def generations_from_json(data: Any) -> list[Generation]:
    """Rebuild generations from :func:`generations_to_json` output; :class:`CodecError` if odd.

    The result is a non-empty list; chat generations carry a model's message (AI or chat).
    """
    if not isinstance(data, list) or not data:
        raise CodecError("cached answer is not a non-empty list of generations")
    out: list[Generation] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("t"), str):
            raise CodecError("cached generation is not an object with a type")
        cls = _GENERATIONS.get(item["t"])
        info = item.get("info")
        if cls is None or not (info is None or isinstance(info, dict)):
            raise CodecError(f"cached generation of unknown type {item['t']!r} or odd info")
        try:
            if "m" in item:
                message = message_from_json(item["m"])
                if message.type not in _ANSWER_MESSAGES:
                    raise CodecError(f"cached generation holds a {message.type!r} message")
                gen = cls(message=message, generation_info=info)  # type: ignore[call-arg]
            elif isinstance(item.get("text"), str) and not issubclass(cls, ChatGeneration):
                gen = cls(text=item["text"], generation_info=info)
            else:
                raise CodecError("cached generation has neither a message nor text")
            _ = gen.text
        except CodecError:
            raise
        except Exception as exc:  # ValidationError, and validators' own Attribute/TypeErrors
            raise CodecError(f"cached generation does not decode: {type(exc).__name__}") from exc
        out.append(gen)
    return out
