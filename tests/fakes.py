"""Models for tests: chat models with rich, counted answers; an embeddings model that counts."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field


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


class StreamingChat(BaseChatModel):
    """Answers ``rich_answer(i)`` for the i-th call, streamed word by word (tool call, usage and
    metadata on the last chunk). Calls are recorded in ``log``, a list shared with copies of the
    model (``cached()`` calls a copy with LangChain's global cache off)."""

    model_name: str = "stream-1"
    temperature: float | None = None
    delay: float = 0.0  # seconds per call (spread over the chunks when streaming)
    fail: bool = False  # raise mid-stream / instead of answering
    log: list[int] = Field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.log)

    @property
    def _llm_type(self) -> str:
        return "streaming-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature}

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _next(self) -> int:
        n = len(self.log)
        self.log.append(n)
        return n

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        n = self._next()
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model failed")
        return ChatResult(generations=[ChatGeneration(message=rich_answer(n))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        n = self._next()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model failed")
        return ChatResult(generations=[ChatGeneration(message=rich_answer(n))])

    def _pieces(self, n: int) -> list[AIMessageChunk]:
        answer = rich_answer(n)
        words = re.findall(r"\S+\s*", str(answer.content))
        chunks = [AIMessageChunk(content=w, id=answer.id) for w in words]
        call = answer.tool_calls[0]
        chunks.append(
            AIMessageChunk(
                content="",
                id=answer.id,
                tool_call_chunks=[
                    tool_call_chunk(
                        name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=0
                    )
                ],
                usage_metadata=answer.usage_metadata,
                response_metadata=answer.response_metadata,
                additional_kwargs=answer.additional_kwargs,
            )
        )
        return chunks

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        pieces = self._pieces(self._next())
        for i, piece in enumerate(pieces):
            time.sleep(self.delay / len(pieces))
            if self.fail and i == 2:
                raise RuntimeError("model failed mid-stream")
            yield ChatGenerationChunk(message=piece)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        pieces = self._pieces(self._next())
        for i, piece in enumerate(pieces):
            await asyncio.sleep(self.delay / len(pieces))
            if self.fail and i == 2:
                raise RuntimeError("model failed mid-stream")
            yield ChatGenerationChunk(message=piece)
