"""LangChain generations and messages ⇄ JSON, by an explicit allowlist of types.

LangChain's own ``loads`` instantiates whatever class the data names (CVE-2025-68664 was an
injection through it). A shared cache is written by many clients, so we decode only the
generation and message types below, by a ``type`` tag, through their pydantic constructors.
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


def message_from_json(data: Any) -> BaseMessage:
    """Rebuild a message from :func:`message_to_json` output; :class:`CodecError` if odd."""
    try:
        fields = dict(data)
        return _MESSAGES[fields["type"]].model_validate(fields)
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise CodecError(f"stored message does not decode: {exc!r}") from exc


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
    """Rebuild generations from :func:`generations_to_json` output; :class:`CodecError` if odd."""
    if not isinstance(data, list):
        raise CodecError("cached answer is not a list of generations")
    out: list[Generation] = []
    try:
        for item in data:
            cls = _GENERATIONS[item["t"]]
            info = item.get("info")
            if "m" in item:
                message = message_from_json(item["m"])
                out.append(cls(message=message, generation_info=info))  # type: ignore[call-arg]
            else:
                out.append(cls(text=item["text"], generation_info=info))
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise CodecError(f"cached generations do not decode: {exc!r}") from exc
    return out
