"""Cache keys: what identifies an LLM request, and how LangChain's ``llm_string`` is read.

- :mod:`llmcache.keys.policy`: :class:`KeyPolicy` (the key of a ``(prompt, llm_string)``
  request), :class:`TemperatureMode` and :class:`KeyDecision`;
- :mod:`llmcache.keys.llm_string`: the parser of LangChain's serialised model strings (it
  never evaluates anything; odd text becomes an opaque model identity);
- :mod:`llmcache.keys._params`: the built-in rules for parameters that never change the answer,
  and the canonical form that is hashed.

Example::

    from llmcache.keys import KeyPolicy

    decision = KeyPolicy(temperature="sample:3").decide(prompt, llm_string)
"""

from llmcache.keys.policy import KeyDecision, KeyPolicy, TemperatureMode

__all__ = ["KeyDecision", "KeyPolicy", "TemperatureMode"]
