"""Request log writer: append every request the cache sees to a JSON Lines file (hot path).

``LangChainCache(..., record_to=path)`` (or ``LLMCACHE_RECORD_TO``) records through a
:class:`RequestRecorder`; ``llmcache replay`` (:mod:`llmcache.replay`) reads the log back. One
request per line (see ``docs/replay.md``)::

    {"ts": 1718000000.5, "prompt": "<prompt as LangChain passes it>", "llm_string": "<as passed>",
     "usage": {"input_tokens": 31, "output_tokens": 120}, "hit": false}

Example::

    from llmcache.requestlog import RequestRecorder

    recorder = RequestRecorder("requests.jsonl")
    recorder.record(prompt, llm_string, {"input_tokens": 31, "output_tokens": 120}, hit=False)
    recorder.close()
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from llmcache.errors import ConfigError
from llmcache.keys._params import redact_llm_string

__all__ = ["RequestRecorder"]

log = logging.getLogger("llmcache")

_FLUSH_BYTES = 64 * 1024
_FLUSH_SECONDS = 1.0
_RECORDERS: weakref.WeakSet[RequestRecorder] = weakref.WeakSet()


class RequestRecorder:
    """Appends request-log lines to a file: buffered, thread-safe, never raising on write.

    Lines are buffered and written with one ``write`` of whole lines to a file opened with
    ``O_APPEND`` (so several processes may share one log), when 64 KiB are pending, when a
    second has passed since the last write, before ``os.fork`` and at exit, and on
    :meth:`flush` / :meth:`close`. The first failed write is logged and recording stops.

    The log holds prompt text: treat it like the prompts themselves. Credentials in the
    ``llm_string`` (``api_key``, ``Authorization`` headers, ``model_kwargs.api_key``, proxy
    URLs: the key policy's rule, :func:`llmcache.keys._params.redact_llm_string`) are written
    as ``'***'``; the key of a logged request is the key of the request.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fd: int | None = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                0o600,
            )
        except OSError as exc:
            raise ConfigError(f"cannot open request log {str(self.path)!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._last_write = time.monotonic()
        self.lines = 0  # lines accepted
        self.failed = False
        _RECORDERS.add(self)

    def record(
        self,
        prompt: str,
        llm_string: str,
        usage: Mapping[str, int] | None = None,
        *,
        hit: bool | None = None,
    ) -> None:
        """Append one request (``hit`` is informational: replay ignores it)."""
        if self.failed:
            return
        try:
            doc: dict[str, Any] = {
                "ts": round(time.time(), 3),
                "prompt": prompt,
                "llm_string": redact_llm_string(llm_string),
            }
            if usage:
                doc["usage"] = usage
            if hit is not None:
                doc["hit"] = hit
            try:
                line = orjson.dumps(doc) + b"\n"
            except TypeError:  # lone surrogates: orjson refuses them, json escapes them
                line = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
            with self._lock:
                self._pending.append(line)
                self._pending_bytes += len(line)
                self.lines += 1
                now = time.monotonic()
                if self._pending_bytes >= _FLUSH_BYTES or now - self._last_write >= _FLUSH_SECONDS:
                    self._write_locked(now)
        except Exception as exc:
            self._fail(exc)

    def flush(self) -> None:
        """Write pending lines now."""
        if self.failed:
            return
        try:
            with self._lock:
                self._write_locked(time.monotonic())
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        """Flush and close the file (later records are dropped)."""
        self.flush()
        with self._lock:
            fd, self._fd = self._fd, None
            self.failed = True  # nothing more to write to
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _write_locked(self, now: float) -> None:
        self._last_write = now
        if not self._pending or self._fd is None:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            if self.failed:
                return
            self.failed = True
            self._pending.clear()
        log.warning(
            "llmcache: writing request log %s failed (%s); recording stopped", self.path, exc
        )

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._pending = []
        self._pending_bytes = 0

    def __repr__(self) -> str:
        return f"RequestRecorder({str(self.path)!r}, lines={self.lines})"


def _flush_all() -> None:
    for recorder in list(_RECORDERS):
        recorder.flush()


def _reset_in_child() -> None:
    for recorder in list(_RECORDERS):
        recorder._after_fork_in_child()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_all, after_in_child=_reset_in_child)
