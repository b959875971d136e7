"""Servers for benchmarks/peers.py: a throwaway redis-server and the local Momento server.

- Redis: ``backends/redis/servers.py`` ``start_standalone`` (a free loopback port, never 6379,
  ElastiCache-shaped settings, temp dir removed on stop).
- Momento: ``backends/momento/server.py`` ``MomentoLocalServer``, by default in a **child
  process** (multiprocessing, spawn): the server is Python + grpcio, and run in the benchmark's
  own process it would take the GIL from the client being measured, so its work would count as
  the client's. ``in_process=True`` runs it in this process instead (for comparison).

Both expose ``address`` and stop idempotently; the Momento one also ``set_delay(seconds)`` (a
server-side wait on every RPC, to emulate a network round trip; 0 clears it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `backends` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

START_TIMEOUT = 30.0  # seconds for the child to import grpc and listen


def start_redis() -> Any:
    """A standalone redis-server on a free loopback port (``.url``, ``.port``, ``.stop()``)."""
    from backends.redis.servers import start_standalone

    return start_standalone()


def _momento_child(conn: Connection, caches: list[str]) -> None:  # pragma: no cover - child
    from backends.momento.server import MomentoLocalServer

    server = MomentoLocalServer(caches=caches).start()
    try:
        conn.send(server.address)
        while True:
            try:
                cmd, arg = conn.recv()
            except EOFError:  # the parent went away
                return
            if cmd == "stop":
                return
            if cmd == "delay":
                server.clear_faults()
                if arg:
                    server.delay(arg)
            conn.send("ok")
    finally:
        server.stop(grace=0.2)


class MomentoServer:
    """The local Momento server, in a child process (default) or in this process."""

    def __init__(self, caches: list[str], *, in_process: bool = False) -> None:
        self.in_process = in_process
        self._local: Any = None
        self._proc: Any = None
        self._conn: Connection | None = None
        if in_process:
            from backends.momento.server import MomentoLocalServer

            self._local = MomentoLocalServer(caches=caches).start()
            self.address: str = self._local.address
            return
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_momento_child, args=(child, caches), daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(START_TIMEOUT):
            self.stop()
            raise RuntimeError("the local Momento server did not start")
        self.address = self._conn.recv()

    def set_delay(self, seconds: float) -> None:
        """Every RPC waits ``seconds`` on the server before answering (0: no delay)."""
        if self._local is not None:
            self._local.clear_faults()
            if seconds:
                self._local.delay(seconds)
            return
        assert self._conn is not None
        self._conn.send(("delay", seconds))
        self._conn.recv()

    def stop(self) -> None:
        """Stop the server (and its process). Idempotent."""
        if self._local is not None:
            self._local.stop(grace=0.2)
            self._local = None
        if self._proc is not None:
            if self._conn is not None:
                with contextlib.suppress(OSError, EOFError):
                    self._conn.send(("stop", None))
                self._conn.close()
                self._conn = None
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
            self._proc = None
