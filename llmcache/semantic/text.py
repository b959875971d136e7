"""The text a prompt means: what the semantic layer embeds and its guards compare.

A chat model's prompt reaches the cache as LangChain's JSON of the messages (``dumps``): embedding
that JSON would weigh its field names as much as the question, and the quoted-literal guard would
see every message as a quoted string. The layer reads the messages' text instead; any other
prompt is its own text.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["text_of"]


def _content(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content blocks: their text parts
        parts = [
            b if isinstance(b, str) else b.get("text")
            for b in value
            if isinstance(b, str) or (isinstance(b, dict) and isinstance(b.get("text"), str))
        ]
        return "\n".join(p for p in parts if isinstance(p, str))
    return None


def text_of(prompt: str) -> str:
    """The messages' text of a LangChain chat prompt, else ``prompt`` itself. Never raises."""
    if not prompt.startswith('[{"lc"'):
        return prompt
    try:
        messages = json.loads(prompt)
    except ValueError:
        return prompt
    texts = []
    for message in messages if isinstance(messages, list) else ():
        kwargs = message.get("kwargs") if isinstance(message, dict) else None
        content = _content(kwargs.get("content")) if isinstance(kwargs, dict) else None
        if content is None:
            return prompt  # not the shape we know: the whole prompt, as given
        texts.append(content)
    return "\n".join(texts) if texts else prompt
