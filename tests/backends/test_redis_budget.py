"""The async call budget (``llmcache.backends.redis.budget.AsyncBudget``) on its own, no server.

A budget that has fired is spent: whatever happens in the call after that (a connect that
renews the budget, a pool telling it how long the connect took) must not schedule it again —
asyncio refuses to reschedule an expiring timeout, and the refusal would surface as an error
in an event-loop callback ("Cannot change state of expiring Timeout") under load.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmcache.backends.redis.budget import AsyncBudget


def _catch(loop: asyncio.AbstractEventLoop) -> list[Any]:
    errors: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


# Each step, after the budget has fired: renew (since = a time relative to now), connected (took).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("renew"), st.floats(-1.0, 1.0)),
        st.tuples(st.just("connected"), st.floats(0.0, 0.1)),
        st.tuples(st.just("sleep"), st.floats(0.0, 0.02)),
    ),
    max_size=6,
)


async def _apply(budget: AsyncBudget, steps: list[tuple[str, float]]) -> None:
    loop = asyncio.get_running_loop()
    for op, value in steps:
        if op == "renew":
            budget.renew(loop.time() + value)
        elif op == "connected":
            budget.connected(value)
        else:
            await asyncio.sleep(value)


@settings(max_examples=60, deadline=None)
@given(during=steps, after=steps, connect=st.sampled_from([0.0, 0.05]))
def test_a_fired_budget_ignores_later_renewals(
    during: list[tuple[str, float]], after: list[tuple[str, float]], connect: float
) -> None:
    """Renewals while the cut call unwinds (the timeout is expiring: a driver's cleanup) and
    after it ended change nothing, and raise nowhere."""

    async def call() -> None:
        errors = _catch(asyncio.get_running_loop())
        budget = AsyncBudget(0.01, connect=connect)
        with pytest.raises(RedisTimeoutError, match="budget"):
            async with budget:
                try:
                    await asyncio.sleep(0.03)  # past the budget (and its one loop-lag grace)
                finally:
                    await _apply(budget, during)  # the budget fired: the call unwinds
        await _apply(budget, after)
        await asyncio.sleep(0.03)  # any timer scheduled by the steps would have fired by now
        assert errors == []

    asyncio.run(call())
