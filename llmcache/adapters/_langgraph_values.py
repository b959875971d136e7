"""LangGraph node outputs ⇄ tagged JSON (no pickle), and the node-writes shape check."""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
from collections import deque
from collections.abc import Iterable
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langgraph.types import Send
from pydantic import BaseModel

from llmcache.adapters._generations import message_from_json, message_to_json
from llmcache.errors import CodecError

#: Payload format of a stored node output (inside the codec's envelope).
_FORMAT = 1
_TAG = "$lg"
_INT64 = (-(2**63), 2**64)  # orjson's integer range; others are stored as text
# LangGraph's own names (langgraph._internal._constants, checked by a test): the namespace of
# node writes, and the channels a finished node's cached writes never hold (LangGraph caches
# only nodes that finished: no error, no interrupt).
CACHE_NS_WRITES = "__pregel_ns_writes"
_NEVER_CACHED = frozenset({"__error__", "__interrupt__"})


def _class_id(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class ValueCodec:
    """Node outputs ⇄ tagged JSON; classes are rebuilt only from an allowlist, never imported.

    ``allowed_types``: pydantic models, dataclasses and enums that may be rebuilt from the
    store. Classes this codec encodes are added (a process trusts the types it writes itself).
    """

    def __init__(self, allowed_types: Iterable[type] = ()) -> None:
        self._types: dict[str, type] = {}
        for cls in allowed_types:
            if not isinstance(cls, type):
                raise TypeError(f"allowed_types holds classes, not {cls!r}")
            self._types[_class_id(cls)] = cls

    def encode(self, value: Any) -> Any:
        """A JSON-able form of ``value``; :class:`CodecError` if it cannot be stored safely."""
        try:
            return {"f": _FORMAT, "v": self._enc(value)}
        except CodecError:
            raise
        except Exception as exc:  # RecursionError (a cycle), a model that will not dump, ...
            raise CodecError(f"cannot store {type(exc).__name__}: {exc}") from exc

    def decode(self, payload: Any) -> Any:
        """The value :meth:`encode` stored; :class:`CodecError` for anything else (total)."""
        try:
            if not isinstance(payload, dict) or payload.get("f") != _FORMAT or "v" not in payload:
                raise CodecError("not a LangGraph cache payload")
            return self._dec(payload["v"])
        except CodecError:
            raise
        except Exception as exc:  # a validator's own errors, RecursionError, ...
            raise CodecError(f"stored value does not decode: {type(exc).__name__}") from exc

    # -- encoding --------------------------------------------------------------------------
    def _learn(self, cls: type) -> str:
        name = _class_id(cls)
        self._types.setdefault(name, cls)
        return name

    def _enc(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            return v if _INT64[0] <= v < _INT64[1] else {_TAG: "int", "v": str(v)}
        if t is float:
            return v if math.isfinite(v) else {_TAG: "float", "v": repr(v)}
        if t is list:
            return [self._enc(x) for x in v]
        if t is dict:
            if all(type(k) is str for k in v) and _TAG not in v:
                return {k: self._enc(x) for k, x in v.items()}
            return {_TAG: "dict", "v": [[self._enc(k), self._enc(x)] for k, x in v.items()]}
        if t in (tuple, set, frozenset, deque):
            items = sorted(v, key=repr) if t in (set, frozenset) else v
            return {_TAG: t.__name__, "v": [self._enc(x) for x in items]}
        if t in (bytes, bytearray):
            return {_TAG: t.__name__, "v": base64.b64encode(v).decode()}
        if isinstance(v, BaseMessage):
            return {_TAG: "message", "v": message_to_json(v)}
        if t is Document:
            return {_TAG: "document", "v": v.model_dump(mode="json")}
        if t is Send:
            return {_TAG: "send", "node": v.node, "v": self._enc(v.arg)}
        if isinstance(v, BaseModel):
            return {_TAG: "model", "c": self._learn(t), "v": v.model_dump(mode="json")}
        if isinstance(v, enum.Enum):
            return {_TAG: "enum", "c": self._learn(t), "v": self._enc(v.value)}
        if dataclasses.is_dataclass(v):
            fields = dataclasses.fields(v)
            if not all(f.init for f in fields):
                raise CodecError(f"dataclass {t.__qualname__} has fields __init__ does not take")
            data = {f.name: self._enc(getattr(v, f.name)) for f in fields}
            return {_TAG: "dataclass", "c": self._learn(t), "v": data}
        raise CodecError(f"cannot store a {t.__module__}.{t.__qualname__} without pickle")

    # -- decoding --------------------------------------------------------------------------
    def _dec(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self._dec(x) for x in v]
        if not isinstance(v, dict):
            return v  # orjson gives only JSON scalars besides lists and dicts
        if _TAG not in v:
            return {k: self._dec(x) for k, x in v.items()}
        tag, data = v[_TAG], v.get("v")
        if tag in ("tuple", "set", "frozenset", "deque"):
            items = [self._dec(x) for x in _list(data)]
            return {"tuple": tuple, "set": set, "frozenset": frozenset, "deque": deque}[tag](items)
        if tag == "dict":
            return {self._dec(k): self._dec(x) for k, x in (_pair(p) for p in _list(data))}
        if tag in ("bytes", "bytearray"):
            raw = base64.b64decode(_str(data), validate=True)  # binascii.Error: CodecError above
            return raw if tag == "bytes" else bytearray(raw)
        if tag == "int":
            return int(_str(data))
        if tag == "float":
            text = _str(data)
            if text not in ("nan", "inf", "-inf"):
                raise CodecError(f"stored float {text!r} is not a non-finite float")
            return float(text)
        if tag == "message":
            return message_from_json(data)
        if tag == "document":
            return Document.model_validate(data)
        if tag == "send":
            return Send(_str(v.get("node")), self._dec(data))
        if tag in ("model", "enum", "dataclass"):
            return self._rebuild(tag, v, data)
        raise CodecError(f"unknown tag {tag!r} in stored value")

    def _rebuild(self, tag: str, v: dict[str, Any], data: Any) -> Any:
        cls = self._types.get(_str(v.get("c")))
        if cls is None:
            # Never imported from the data: unknown classes are a miss, not an import.
            raise CodecError(f"class {v.get('c')!r} is not in allowed_types")
        if tag == "model" and issubclass(cls, BaseModel):
            return cls.model_validate(data)
        if tag == "enum" and issubclass(cls, enum.Enum):
            return cls(self._dec(data))
        if tag == "dataclass" and dataclasses.is_dataclass(cls) and isinstance(data, dict):
            return cls(**{_str(k): self._dec(x) for k, x in data.items()})
        raise CodecError(f"stored {tag} names {v.get('c')!r}, which is not one")


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise CodecError("stored value: expected a list")
    return data


def _str(data: Any) -> str:
    if not isinstance(data, str):
        raise CodecError("stored value: expected a string")
    return data


def node_writes(value: Any) -> Any:
    """``value`` if it has the shape of a node's cached writes, ``(channel, value)`` pairs, as
    LangGraph reads them; :class:`CodecError` otherwise (LangGraph would crash on it)."""
    if not isinstance(value, list | tuple | deque):
        raise CodecError("stored node writes are not a sequence")
    pairs = []
    for write in value:
        if not (isinstance(write, list | tuple) and len(write) == 2 and isinstance(write[0], str)):
            raise CodecError("stored node writes are not (channel, value) pairs")
        if write[0] in _NEVER_CACHED:
            raise CodecError(f"stored node writes hold {write[0]!r}, which LangGraph never caches")
        pairs.append((write[0], write[1]))
    return deque(pairs) if isinstance(value, deque) else type(value)(pairs)


def _pair(data: Any) -> tuple[Any, Any]:
    if not isinstance(data, list) or len(data) != 2:
        raise CodecError("stored value: expected a [key, value] pair")
    return data[0], data[1]
