"""Hit latency through LangChain cache interfaces, ours and LangChain's, measured in one run.

    python benchmarks/hit_latency.py [--rounds 15] [--ops 2000]

Every cache holds the same chat answer (a ~2 KB AIMessage with tool calls and usage) under the
same prompt/llm_string; rounds are interleaved so machine drift hits all caches alike. Prints the
median µs per `lookup` (sync) and `alookup` (async) and the ratio to langchain-core's
InMemoryCache measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from langchain_core.caches import BaseCache, InMemoryCache
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration

from llmcache.adapters.langchain import LangChainCache

PROMPT = dumps([HumanMessage(content="Summarise the quarterly report in three bullet points.")])
LLM_STRING = (
    '{"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {"model_name": '
    '"gpt-4o-mini", "openai_api_key": {"id": ["OPENAI_API_KEY"], "lc": 1, "type": "secret"}, '
    '"stream_usage": true, "temperature": 0.2}, "lc": 1, "name": "ChatOpenAI", "type": '
    "\"constructor\"}---[('stop', None)]"
)
ANSWER = [
    ChatGeneration(
        message=AIMessage(
            content="- Revenue grew 12% year on year.\n" * 40,
            tool_calls=[{"name": "lookup", "args": {"q": "report"}, "id": "call_1"}],
            usage_metadata={"input_tokens": 812, "output_tokens": 240, "total_tokens": 1052},
            response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        ),
        generation_info={"finish_reason": "stop"},
    )
]


def caches(tmp: str) -> dict[str, BaseCache]:
    from langchain_community.cache import SQLiteCache

    return {
        "langchain-core InMemoryCache": InMemoryCache(),
        "langchain-community SQLiteCache": SQLiteCache(database_path=f"{tmp}/lc.sqlite"),
        "llmcache memory://": LangChainCache.from_url("memory://"),
        "llmcache disk://": LangChainCache.from_url(f"disk://{tmp}/llmcache"),
    }


def time_sync(cache: BaseCache, ops: int) -> float:
    lookup: Callable[[str, str], Any] = cache.lookup
    start = time.perf_counter()
    for _ in range(ops):
        lookup(PROMPT, LLM_STRING)
    return (time.perf_counter() - start) / ops


async def time_async(cache: BaseCache, ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        await cache.alookup(PROMPT, LLM_STRING)
    return (time.perf_counter() - start) / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subjects = caches(tmp)
        for cache in subjects.values():
            cache.update(PROMPT, LLM_STRING, ANSWER)
            assert cache.lookup(PROMPT, LLM_STRING) == ANSWER, cache
        sync: dict[str, list[float]] = {name: [] for name in subjects}
        async_: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(args.rounds):
            for name, cache in subjects.items():
                sync[name].append(time_sync(cache, args.ops))
                async_[name].append(asyncio.run(time_async(cache, args.ops // 4)))
        base = "langchain-core InMemoryCache"
        base_s, base_a = statistics.median(sync[base]), statistics.median(async_[base])
        print(f"{'cache':34} {'sync µs':>9} {'x base':>7} {'async µs':>9} {'x base':>7}")
        for name in subjects:
            s, a = statistics.median(sync[name]), statistics.median(async_[name])
            print(f"{name:34} {s * 1e6:9.1f} {s / base_s:7.2f} {a * 1e6:9.1f} {a / base_a:7.2f}")


if __name__ == "__main__":
    main()
