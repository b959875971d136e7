"""Key policy: turn LangChain's ``(prompt, llm_string)`` into a cache key.

A key identifies *what the model was asked and how*: the prompt, the model identity and the
parameters that change the answer. Parameters that never change the answer (secrets, callbacks,
timeouts, retries, streaming flags, ...) are dropped; the rest is canonicalised (sorted JSON,
integral floats as ints) and hashed with BLAKE2b. No prompt text appears in a key.
The ``llm_string`` is read by :mod:`llmcache.keys.llm_string`; the built-in drop rules and the
canonical form are in :mod:`llmcache.keys._params`; this module adds the per-policy choices
(temperature mode, ``ignore_params``, key version) and makes the key.

Example::

    from llmcache.keys import KeyPolicy

    policy = KeyPolicy(temperature="bypass_above:0.5")
    decision = policy.decide(prompt, llm_string)
    if decision.key is None:
        ...  # do not look up, do not store (decision.reason says why)
    print(policy.explain(prompt, llm_string))
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, field_validator, model_validator

from llmcache.errors import ConfigError
from llmcache.keys._params import (
    DIGEST_SIZE,
    ModelParams,
    canon,
    canon_mapping,
    digest,
    dumps,
    model_params,
)

__all__ = ["KeyDecision", "KeyPolicy", "TemperatureMode", "printable"]

_FORMS = '"include", "ignore", "bypass_above:<T>" (e.g. "bypass_above:0.5"), "sample:<k>" (k >= 2)'


class TemperatureMode(BaseModel, frozen=True):
    """How temperature enters the key.

    - ``include`` (default): temperature is part of the key;
    - ``ignore``: temperature is left out (0.0 and 0.7 share an entry);
    - ``bypass_above:T``: calls with temperature > T are neither looked up nor stored;
    - ``sample:k``: temperature is part of the key and up to k answers are kept per key.
    """

    kind: Literal["include", "ignore", "bypass_above", "sample"] = "include"
    threshold: float | None = None
    samples: int = 1

    @model_validator(mode="after")
    def _check(self) -> TemperatureMode:
        if self.kind == "bypass_above":
            if self.threshold is None or not math.isfinite(self.threshold):
                raise ValueError("bypass_above needs a finite threshold, e.g. bypass_above:0.5")
        elif self.threshold is not None:
            raise ValueError(f"threshold is only valid with bypass_above, not {self.kind}")
        if self.kind == "sample":
            if self.samples < 2:
                raise ValueError(f"sample needs k >= 2 answers per key, got {self.samples}")
        elif self.samples != 1:
            raise ValueError(f"samples is only valid with sample, not {self.kind}")
        return self

    @classmethod
    def parse(cls, text: str) -> TemperatureMode:
        """Read ``include``, ``ignore``, ``bypass_above:0.5`` or ``sample:3`` (``=`` also works)."""
        if not isinstance(text, str):
            raise ConfigError(f"temperature mode {text!r} is not text; valid forms: {_FORMS}")
        raw = text.strip().lower()
        name, sep, arg = raw.replace("=", ":", 1).partition(":")
        name, arg = name.strip(), arg.strip()
        try:
            if name in ("include", "ignore") and not sep:
                return cls(kind=name)  # type: ignore[arg-type]
            if name == "bypass_above" and arg:
                return cls(kind="bypass_above", threshold=float(arg))
            if name == "sample" and arg:
                return cls(kind="sample", samples=int(arg))
        except ValueError as exc:  # float()/int() failures and pydantic's ValidationError
            raise ConfigError(
                f"invalid temperature mode {text!r}: {_first_line(exc)}; valid forms: {_FORMS}"
            ) from exc
        raise ConfigError(f"invalid temperature mode {text!r}; valid forms: {_FORMS}")

    def __str__(self) -> str:
        if self.kind == "bypass_above":
            return f"bypass_above:{_num_text(self.threshold)}"
        if self.kind == "sample":
            return f"sample:{self.samples}"
        return self.kind


def _first_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic ValidationError: use the message, not the whole dump
        try:
            return "; ".join(str(e.get("msg", "")) for e in errors())
        except Exception:  # pragma: no cover - defensive
            pass
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _num_text(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if x.is_integer() else repr(x)


@dataclass(frozen=True, slots=True)
class KeyDecision:
    """What the policy decided for one request.

    ``key`` is ``None`` for a bypass (do not look up, do not store) and ``reason`` says why.
    ``samples`` is how many answers to keep under the key (1, or k in sample mode).
    ``material`` is what was hashed: ``{"model", "params", "prompt"}`` (the prompt as a digest).
    Treat it as read-only: its nested values are shared with the policy's parse cache.
    """

    key: str | None
    reason: str | None
    samples: int
    material: dict[str, Any]


# --------------------------------------------------------------------------- per-policy choices


def _temperature_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class _Prepared:
    parsed: ModelParams
    model: Any
    params: dict[str, Any]
    dropped: dict[str, str]
    bypass: str | None
    greedy: bool  # temperature is known to be 0: one answer is all there is to keep
    prefix: bytes  # canonical bytes of {"model":..,"params":..,"prompt":" ; digest + '"}' follow
    hashed: Any  # BLAKE2b state after ``prefix``: each key copies it and hashes only the rest


@lru_cache(maxsize=1024)
def _prepare(
    llm_string: str, kind: str, threshold: float | None, ignore: frozenset[str]
) -> _Prepared:
    parsed = model_params(llm_string)
    params = dict(parsed.params)
    dropped = dict(parsed.dropped)
    for name in ignore & params.keys():
        del params[name]
        dropped[name] = "ignore_params"
    bypass = None
    greedy = False
    if "temperature" in params:
        raw = params["temperature"]
        temp = _temperature_of(raw)
        greedy = temp == 0
        if temp is not None:
            params["temperature"] = canon(temp)
        if kind == "ignore":
            del params["temperature"]
            dropped["temperature"] = "temperature mode ignore"
        elif kind == "bypass_above" and threshold is not None:
            if temp is None:
                bypass = f"temperature {raw!r} is not a number (bypass_above {threshold:g})"
            elif temp > threshold:
                bypass = f"temperature {temp:g} > bypass_above {threshold:g}"
    head = dumps({"model": parsed.model, "params": canon_mapping(params)})
    prefix = head[:-1] + b',"prompt":"'
    hashed = hashlib.blake2b(prefix, digest_size=DIGEST_SIZE)
    return _Prepared(parsed, parsed.model, params, dropped, bypass, greedy, prefix, hashed)


# --------------------------------------------------------------------------- the policy


class KeyPolicy(BaseModel, frozen=True, extra="forbid"):
    """Which parts of a request make up its cache key (serialisable; see module docstring)."""

    temperature: TemperatureMode = TemperatureMode()
    version: str = "v1"
    ignore_params: frozenset[str] = frozenset()

    if TYPE_CHECKING:  # let type checkers accept the text forms the validators accept

        def __init__(
            self,
            *,
            temperature: TemperatureMode | str = ...,
            version: str = ...,
            ignore_params: Iterable[str] = ...,
        ) -> None: ...

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature_text(cls, value: Any) -> Any:
        return TemperatureMode.parse(value) if isinstance(value, str) else value

    @field_validator("version")
    @classmethod
    def _version_text(cls, value: str) -> str:
        if not value or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError(f"key version {value!r} must be non-empty letters, digits, _ . -")
        return value

    def decide(self, prompt: str, llm_string: str) -> KeyDecision:
        """Return the key for ``(prompt, llm_string)``, or a bypass with its reason.

        Never raises: any text is a key (text that does not parse is identified whole) or,
        as a last resort, a bypass (the call goes to the model, uncached).
        """
        try:
            return self._decide(prompt, llm_string)
        except Exception as exc:
            reason = f"request not understood ({type(exc).__name__}): not cached"
            return KeyDecision(key=None, reason=reason, samples=1, material={})

    def _decide(self, prompt: str, llm_string: str) -> KeyDecision:
        mode = self.temperature
        prep = _prepare(llm_string, mode.kind, mode.threshold, self.ignore_params)
        pdig = digest(prompt.encode("utf-8", "surrogatepass"))
        material = {"model": prep.model, "params": dict(prep.params), "prompt": pdig}
        if prep.bypass is not None:
            return KeyDecision(key=None, reason=prep.bypass, samples=1, material=material)
        # digest(prefix + prompt digest + '"}'), the prefix's ~1 KB hashed once per llm_string
        hasher = prep.hashed.copy()
        hasher.update(pdig.encode() + b'"}')
        key = f"{self.version}:{hasher.hexdigest()}"
        # sample:k is for sampled calls; a temperature-0 call keeps (and serves) one answer.
        samples = 1 if prep.greedy else mode.samples
        return KeyDecision(key=key, reason=None, samples=samples, material=material)

    def explain(self, prompt: str, llm_string: str) -> str:
        """Return the key material as indented JSON: key, model, params and what was dropped."""
        decision = self.decide(prompt, llm_string)
        mode = self.temperature
        prep = _prepare(llm_string, mode.kind, mode.threshold, self.ignore_params)
        preview = prompt if len(prompt) <= 120 else prompt[:117] + "..."
        doc = {
            "key": decision.key,
            "bypass": decision.reason,
            "samples": decision.samples,
            "policy": {
                "temperature": str(mode),
                "version": self.version,
                "ignore_params": sorted(self.ignore_params),
            },
            "llm_string_form": prep.parsed.form,
            "model": decision.material["model"],
            "params": decision.material["params"],
            "prompt": {"digest": decision.material["prompt"], "chars": len(prompt)},
            "prompt_preview": preview,
            "dropped": dict(sorted(prep.dropped.items())),
        }
        return json.dumps(printable(doc), indent=2, ensure_ascii=False)


def printable(value: Any) -> Any:
    """``value`` with lone surrogates in its strings written as ``\\udcXX`` text: a prompt from a
    shell may hold them (undecodable argv bytes), and they cannot be printed or written as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value
