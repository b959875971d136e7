"""The workload every benchmark uses: a realistic ChatOpenAI ``llm_string`` and chat prompts.

``chat_openai_llm_string()`` builds the string the way LangChain builds it for a serialisable chat
model (``BaseChatModel._get_llm_string``: ``json.dumps(dumpd(model), sort_keys=True) + "---" +
str(sorted({**call_kwargs, "stop": stop}.items()))``), for a model shaped like
``ChatOpenAI(model="gpt-4o-mini", temperature=0.2, max_tokens=1024, timeout=30, max_retries=2,
stream_usage=True).bind_tools([get_weather, search_docs])`` — ~1 KB, about what a tool-calling
ChatOpenAI really hands a cache on every call (langchain-openai is not needed: the class below
declares the same namespace, fields, secret and defaults, so ``dumpd`` gives the same JSON).

Example::

    from _workload import LLM_STRING, prompt

    cache.lookup(prompt(7), LLM_STRING)
"""

from __future__ import annotations

from functools import cache
from typing import Any

from langchain_core.language_models.chat_models import SimpleChatModel
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, SecretStr

__all__ = ["LLM_STRING", "chat_openai_llm_string", "prompt"]


class ChatOpenAI(SimpleChatModel):
    """The serialisable shape of langchain-openai's ChatOpenAI (fields that reach dumpd)."""

    model_config = ConfigDict(populate_by_name=True)

    model_name: str = Field(default="gpt-3.5-turbo", alias="model")
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    openai_api_key: SecretStr | None = Field(default=None, alias="api_key")
    openai_api_base: str | None = Field(default=None, alias="base_url")
    request_timeout: float | None = Field(default=None, alias="timeout")
    max_retries: int | None = None
    stream_usage: bool = False
    model_kwargs: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain", "chat_models", "openai"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"openai_api_key": "OPENAI_API_KEY"}

    @property
    def _llm_type(self) -> str:
        return "openai-chat"

    def _call(self, *args: Any, **kwargs: Any) -> str:  # pragma: no cover - never called
        raise NotImplementedError


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather for a city.

    Args:
        city: City name, e.g. Paris.
        unit: celsius or fahrenheit.
    """
    raise NotImplementedError


def search_docs(query: str, top_k: int = 5) -> list[str]:
    """Search the internal knowledge base.

    Args:
        query: What to search for.
        top_k: How many passages to return.
    """
    raise NotImplementedError


def chat_openai_llm_string() -> str:
    """What LangChain hands a cache for a tool-calling ChatOpenAI call (~1 KB)."""
    model = ChatOpenAI(
        model="gpt-4o-mini",
        temperature=0.2,
        max_tokens=1024,
        api_key=SecretStr("sk-not-a-real-key"),
        timeout=30,
        max_retries=2,
        stream_usage=True,
    )
    tools = [convert_to_openai_tool(t) for t in (get_weather, search_docs)]
    return model._get_llm_string(stop=None, tools=tools)


LLM_STRING = chat_openai_llm_string()


@cache
def prompt(i: int) -> str:
    """The ``i``-th distinct chat prompt, serialised as LangChain does (``dumps(messages)``)."""
    return dumps([HumanMessage(content=f"Question {i}: summarise the quarterly report.")])
