"""The offline model behind ``llmcache demo``: a chat model that takes as long as a real one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

__all__ = ["DemoChatModel", "demo_model"]

_ANSWER = (
    "A cache stores the answer to a question the first time it is asked, so that the same "
    "question asked again is answered from memory in a fraction of a millisecond instead of "
    "waiting seconds and paying tokens for the model to write it again."
)


class DemoChatModel(BaseChatModel):
    """Answers after ``latency`` seconds, like a hosted model; counts its calls."""

    model_name: str = "llmcache-demo"
    latency: float = 2.0
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "llmcache-demo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # latency is how slow the fake is, not what it answers: keep it out of the key.
        return {"model_name": self.model_name}

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        self.calls += 1
        question = str(messages[-1].content)
        words = len(question.split()) + len(_ANSWER.split())
        message = AIMessage(
            content=_ANSWER,
            usage_metadata={
                "input_tokens": len(question.split()) * 4 // 3 + 1,
                "output_tokens": len(_ANSWER.split()) * 4 // 3,
                "total_tokens": words * 4 // 3 + 1,
            },
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency)
        return self._answer(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.latency)
        return self._answer(messages)


def demo_model(latency: float, *, use_openai: bool) -> tuple[BaseChatModel, str]:
    """The model for the demo and a label: OpenAI when asked and available, else the fake."""
    if use_openai:
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            pass
        else:
            model: BaseChatModel = ChatOpenAI(model="gpt-4o-mini", temperature=0)
            return model, "OpenAI gpt-4o-mini"
    return DemoChatModel(latency=latency), f"offline fake chat model ({latency:g} s per call)"
