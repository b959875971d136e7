"""Models for tests: chat models with rich, counted answers; an embeddings model that counts."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult


def rich_answer(n: int = 0) -> AIMessage:
    """An AIMessage using every field a cache must keep."""
    return AIMessage(
        content=f"It is sunny in Paris ({n}).",
        id=f"msg-{n}",
        tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris", "unit": "C"}, "id": f"call_{n}"}
        ],
        usage_metadata={
            "input_tokens": 12,
            "output_tokens": 7 + n,
            "total_tokens": 19 + n,
            "input_token_details": {"cache_read": 0},
        },
        response_metadata={"model_name": "rich-1", "finish_reason": "tool_calls", "n": n},
        additional_kwargs={"refusal": None},
    )


class CountingChat(BaseChatModel):
    """Answers ``rich_answer(i)`` for the i-th call and counts calls (non-serialisable form)."""

    model_name: str = "rich-1"
    temperature: float | None = None
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "counting-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = rich_answer(self.calls)
        self.calls += 1
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"logprobs": None})]
        )


class SerialisableCountingChat(CountingChat):
    """The same model in LangChain's serialisable form (dumpd JSON + '---' + params)."""

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True


class CountingEmbeddings(DeterministicFakeEmbedding):
    """langchain-core's deterministic fake embedding model, counting the texts it embeds."""

    embedded: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.embedded += 1
        return super().embed_query(text)
