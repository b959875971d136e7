"""A local server speaking Momento's gRPC protocol (cache data + control services).

The real ``momento`` SDK talks to it through ``CredentialProvider.for_momento_local(host, port)``
(llmcache: ``momento://<cache>?local=host:port``). It keeps items in memory, honours TTLs and
enforces Momento's documented limits, so tests and benchmarks exercise the SDK over real gRPC.

What it serves (everything else answers UNIMPLEMENTED, from the generated servicer base classes):

- control: CreateCache (ALREADY_EXISTS if present), DeleteCache, ListCaches, FlushCache
  (NOT_FOUND for a missing cache);
- data: Get, Set, Delete, SetIfNotExists, Increment, ListPushBack, ListFetch, ListLength. Data
  calls name their cache in the ``cache`` metadata header (NOT_FOUND if it does not exist).

Limits (as Momento documents them): TTL <= 24 h (INVALID_ARGUMENT above it), item (key + value)
<= 5 MiB and list element <= 128 KiB (RESOURCE_EXHAUSTED with trailing metadata
``err: item_size_limit_exceeded`` / ``element_size_limit_exceeded``, which the SDK turns into its
"Item size limit exceeded" message). ``Increment`` (re)applies the request TTL, like ``Set``.

Faults, for tests and benchmarks, two ways:

- server methods: :meth:`MomentoLocalServer.fail` (every matching RPC aborts with a status),
  :meth:`MomentoLocalServer.delay` (every matching RPC waits first), :meth:`clear_faults`, and
  :meth:`stop` / :meth:`start` (the restarted server listens on the same port, data kept);
- request metadata headers, as Momento's own ``momento-local`` reads them (sent from an SDK
  middleware): ``return-error`` (a status name such as ``unavailable``), ``error-rpcs`` (RPC names,
  space or comma separated, e.g. ``get set``; default all), ``error-count`` (fail only the first
  N matching calls per ``request-id`` header), ``delay-ms``, ``delay-rpcs``, ``delay-count``.

Example::

    from backends.momento import MomentoLocalServer

    with MomentoLocalServer(caches=["llm"]) as server:
        print(server.address)          # 127.0.0.1:<free port>
        server.delay(0.001)            # emulate an in-region round trip on every RPC
        server.fail()                  # every RPC now answers UNAVAILABLE
        server.clear_faults()
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, Self

import grpc
from momento_wire_types import cacheclient_pb2 as pb
from momento_wire_types import cacheclient_pb2_grpc as pb_grpc
from momento_wire_types import controlclient_pb2 as cpb
from momento_wire_types import controlclient_pb2_grpc as cpb_grpc

__all__ = ["MAX_ELEMENT_BYTES", "MAX_ITEM_BYTES", "MAX_TTL_MS", "MomentoLocalServer", "main"]

#: Momento's maximum item TTL: 24 hours, in milliseconds.
MAX_TTL_MS = 24 * 3600 * 1000
#: Momento's maximum item size (key + value): 5 MiB, in bytes.
MAX_ITEM_BYTES = 5 * 1024 * 1024
#: Momento's maximum size of one collection element: 128 KiB, in bytes.
MAX_ELEMENT_BYTES = 128 * 1024
#: gRPC message limit of the server: the SDK sends up to ~5.24 MB, above grpcio's 4 MiB default;
#: 16 MiB lets oversize items reach the handler and get Momento's own error, not a transport one.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Sweep expired items after this many writes to one cache (amortised O(1) per write).
SWEEP_EVERY_WRITES = 2000

# The SDK's configurations send keepalive pings every 5 s even when idle; grpc's default server
# policy answers GOAWAY(too_many_pings) after a few of those. Allow them.
_SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]


def _norm_rpc(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def _rpc_set(spec: str | Iterable[str] | None) -> frozenset[str] | None:
    if spec is None:
        return None
    names = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec)
    return frozenset(_norm_rpc(n) for n in names) or None


def _status(name: str | grpc.StatusCode) -> grpc.StatusCode:
    if isinstance(name, grpc.StatusCode):
        return name
    return grpc.StatusCode[name.strip().upper().replace("-", "_")]


@dataclass
class _Item:
    value: bytes | list[bytes]
    expires: float  # time.monotonic() deadline


@dataclass
class _Fault:
    """A server-side fault rule: abort with ``code`` or wait ``delay`` s on matching RPCs."""

    code: grpc.StatusCode | None = None
    delay: float = 0.0
    rpcs: frozenset[str] | None = None
    remaining: int | None = None  # None = forever

    def take(self, rpc: str) -> bool:
        if self.rpcs is not None and rpc not in self.rpcs:
            return False
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class _State:
    caches: dict[str, dict[bytes, _Item]] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    faults: list[_Fault] = field(default_factory=list)
    header_counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _abort(
    context: grpc.ServicerContext, code: grpc.StatusCode, details: str, err: str | None = None
) -> NoReturn:
    if err is not None:
        context.set_trailing_metadata((("err", err),))
    context.abort(code, details)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _wait(context: grpc.ServicerContext, seconds: float) -> None:
    """Sleep ``seconds`` unless the client goes away first (deadline passed, cancelled)."""
    deadline = time.monotonic() + seconds
    while context.is_active():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.02))


class _Handler:
    """What every RPC does first: count it, apply server faults, then header faults."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def enter(self, rpc: str, context: grpc.ServicerContext) -> dict[str, str]:
        key = _norm_rpc(rpc)
        metadata = {k.lower(): str(v) for k, v in context.invocation_metadata()}
        delay = 0.0
        code: grpc.StatusCode | None = None
        with self.state.lock:
            self.state.calls[rpc] += 1
            for fault in self.state.faults:
                if fault.take(key):
                    delay += fault.delay
                    code = fault.code or code
        delay += self._header_delay(key, metadata)
        if delay > 0:
            _wait(context, delay)
        if code is None:
            code = self._header_error(key, metadata, context)
        if code is not None:
            _abort(context, code, f"injected fault: {code.name} on {rpc}")
        return metadata

    def _counted(self, kind: str, rpc: str, md: Mapping[str, str], count: str | None) -> bool:
        if count is None:
            return True
        ident = (kind, md.get("request-id", ""), md.get(f"{kind}-rpcs", ""), count)
        with self.state.lock:
            self.state.header_counts[ident] += 1
            return self.state.header_counts[ident] <= int(count)

    def _header_delay(self, rpc: str, md: Mapping[str, str]) -> float:
        if "delay-ms" not in md:
            return 0.0
        rpcs = _rpc_set(md.get("delay-rpcs"))
        if rpcs is not None and rpc not in rpcs:
            return 0.0
        if not self._counted("delay", rpc, md, md.get("delay-count")):
            return 0.0
        return int(md["delay-ms"]) / 1000

    def _header_error(
        self, rpc: str, md: Mapping[str, str], context: grpc.ServicerContext
    ) -> grpc.StatusCode | None:
        name = md.get("return-error")
        if not name:
            return None
        rpcs = _rpc_set(md.get("error-rpcs"))
        if rpcs is not None and rpc not in rpcs:
            return None
        try:
            code = _status(name)
        except KeyError:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"unknown return-error {name!r}")
        if not self._counted("error", rpc, md, md.get("error-count")):
            return None
        return code


class _Control(cpb_grpc.ScsControlServicer):  # type: ignore[misc]
    def __init__(self, handler: _Handler) -> None:
        self.h = handler
        self.state = handler.state

    def CreateCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.h.enter("CreateCache", context)
        name = request.cache_name
        if not name:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "cache name must not be empty")
        with self.state.lock:
            if name in self.state.caches:
                _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"cache {name!r} already exists")
            self.state.caches[name] = {}
        return cpb._CreateCacheResponse()

    def DeleteCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.h.enter("DeleteCache", context)
        with self.state.lock:
            if self.state.caches.pop(request.cache_name, None) is None:
                _abort(
                    context, grpc.StatusCode.NOT_FOUND, f"cache {request.cache_name!r} not found"
                )
        return cpb._DeleteCacheResponse()

    def ListCaches(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.h.enter("ListCaches", context)
        with self.state.lock:
            names = sorted(self.state.caches)
        return cpb._ListCachesResponse(cache=[cpb._Cache(cache_name=n) for n in names])

    def FlushCache(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.h.enter("FlushCache", context)
        with self.state.lock:
            cache = self.state.caches.get(request.cache_name)
            if cache is None:
                _abort(
                    context, grpc.StatusCode.NOT_FOUND, f"cache {request.cache_name!r} not found"
                )
            cache.clear()
        return cpb._FlushCacheResponse()


class _Data(pb_grpc.ScsServicer):  # type: ignore[misc]
    def __init__(self, handler: _Handler) -> None:
        self.h = handler
        self.state = handler.state

    # -- helpers (callers hold no lock; these take it) -------------------------------------------
    def _cache(self, rpc: str, context: grpc.ServicerContext) -> tuple[str, dict[bytes, _Item]]:
        md = self.h.enter(rpc, context)
        name = md.get("cache")
        if not name:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "missing 'cache' metadata header")
        with self.state.lock:
            cache = self.state.caches.get(name)
        if cache is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"cache {name!r} not found")
        return name, cache

    @staticmethod
    def _ttl(context: grpc.ServicerContext, ttl_ms: int) -> float:
        if ttl_ms <= 0 or ttl_ms > MAX_TTL_MS:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"ttl of {ttl_ms} ms is outside Momento's limit (1 ms .. {MAX_TTL_MS} ms = 24 h)",
            )
        return time.monotonic() + ttl_ms / 1000

    @staticmethod
    def _size(context: grpc.ServicerContext, key: bytes, value: bytes) -> None:
        if len(key) + len(value) > MAX_ITEM_BYTES:
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"item size {len(key) + len(value)} bytes exceeds the limit of "
                f"{MAX_ITEM_BYTES} bytes",
                err="item_size_limit_exceeded",
            )

    def _live(self, cache: dict[bytes, _Item], key: bytes) -> _Item | None:
        # Caller holds the lock.
        item = cache.get(key)
        if item is not None and item.expires <= time.monotonic():
            del cache[key]
            return None
        return item

    def _wrote(self, name: str, cache: dict[bytes, _Item]) -> None:
        # Caller holds the lock.
        self.state.writes[name] += 1
        if self.state.writes[name] % SWEEP_EVERY_WRITES == 0:
            now = time.monotonic()
            for k in [k for k, it in cache.items() if it.expires <= now]:
                del cache[k]

    @staticmethod
    def _wrong_type(context: grpc.ServicerContext, key: bytes, want: str) -> NoReturn:
        _abort(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"item {key[:64]!r} is not a {want}",
        )

    # -- scalar RPCs -----------------------------------------------------------------------------
    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, cache = self._cache("Get", context)
        with self.state.lock:
            item = self._live(cache, request.cache_key)
        if item is None:
            return pb._GetResponse(result=pb.Miss)
        if not isinstance(item.value, bytes):
            self._wrong_type(context, request.cache_key, "scalar")
        return pb._GetResponse(result=pb.Hit, cache_body=item.value)

    def Set(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, cache = self._cache("Set", context)
        expires = self._ttl(context, request.ttl_milliseconds)
        self._size(context, request.cache_key, request.cache_body)
        with self.state.lock:
            cache[request.cache_key] = _Item(request.cache_body, expires)
            self._wrote(name, cache)
        return pb._SetResponse(result=pb.Ok)

    def SetIfNotExists(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, cache = self._cache("SetIfNotExists", context)
        expires = self._ttl(context, request.ttl_milliseconds)
        self._size(context, request.cache_key, request.cache_body)
        with self.state.lock:
            if self._live(cache, request.cache_key) is not None:
                return pb._SetIfNotExistsResponse(
                    not_stored=pb._SetIfNotExistsResponse._NotStored()
                )
            cache[request.cache_key] = _Item(request.cache_body, expires)
            self._wrote(name, cache)
        return pb._SetIfNotExistsResponse(stored=pb._SetIfNotExistsResponse._Stored())

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, cache = self._cache("Delete", context)
        with self.state.lock:
            cache.pop(request.cache_key, None)
        return pb._DeleteResponse()

    def Increment(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, cache = self._cache("Increment", context)
        expires = self._ttl(context, request.ttl_milliseconds)
        with self.state.lock:
            item = self._live(cache, request.cache_key)
            current = 0
            if item is not None:
                try:
                    if not isinstance(item.value, bytes):
                        raise ValueError
                    current = int(item.value.decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    self._wrong_type(context, request.cache_key, "base-10 integer")
            value = current + request.amount
            cache[request.cache_key] = _Item(str(value).encode("ascii"), expires)
            self._wrote(name, cache)
        return pb._IncrementResponse(value=value)

    # -- list RPCs (chat history) ------------------------------------------------------------------
    def ListPushBack(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, cache = self._cache("ListPushBack", context)
        expires = self._ttl(context, request.ttl_milliseconds)
        if len(request.value) > MAX_ELEMENT_BYTES:
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"element size {len(request.value)} bytes exceeds the limit of "
                f"{MAX_ELEMENT_BYTES} bytes",
                err="element_size_limit_exceeded",
            )
        with self.state.lock:
            item = self._live(cache, request.list_name)
            if item is None:
                item = cache[request.list_name] = _Item([], expires)
            elif request.refresh_ttl:
                item.expires = expires
            if not isinstance(item.value, list):
                self._wrong_type(context, request.list_name, "list")
            item.value.append(request.value)
            if request.truncate_front_to_size and len(item.value) > request.truncate_front_to_size:
                del item.value[: len(item.value) - request.truncate_front_to_size]
            length = len(item.value)
            self._wrote(name, cache)
        return pb._ListPushBackResponse(list_length=length)

    def _list(self, cache: dict[bytes, _Item], key: bytes, context: grpc.ServicerContext) -> Any:
        with self.state.lock:
            item = self._live(cache, key)
            if item is None:
                return None
            if not isinstance(item.value, list):
                self._wrong_type(context, key, "list")
            return list(item.value)

    def ListFetch(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, cache = self._cache("ListFetch", context)
        values = self._list(cache, request.list_name, context)
        if values is None:
            return pb._ListFetchResponse(missing=pb._ListFetchResponse._Missing())
        start = request.inclusive_start if request.HasField("inclusive_start") else None
        end = request.exclusive_end if request.HasField("exclusive_end") else None
        return pb._ListFetchResponse(found=pb._ListFetchResponse._Found(values=values[start:end]))

    def ListLength(self, request: Any, context: grpc.ServicerContext) -> Any:
        _, cache = self._cache("ListLength", context)
        values = self._list(cache, request.list_name, context)
        if values is None:
            return pb._ListLengthResponse(missing=pb._ListLengthResponse._Missing())
        return pb._ListLengthResponse(found=pb._ListLengthResponse._Found(length=len(values)))


class MomentoLocalServer:
    """The local server: start/stop (same port on restart), caches, fault injection.

    ``port=0`` picks a free port at the first :meth:`start`; later starts reuse it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        caches: Iterable[str] = (),
        max_workers: int = 64,
    ) -> None:
        self.host = host
        self.port = port
        self.max_workers = max_workers
        self._state = _State()
        for name in caches:
            self._state.caches[name] = {}
        self._server: grpc.Server | None = None
        self._handler = _Handler(self._state)

    @property
    def address(self) -> str:
        """``host:port`` to give ``CredentialProvider.for_momento_local`` or ``?local=``."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Start serving (again, on the same port after :meth:`stop`); data is kept."""
        if self._server is not None:
            return self
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="momento"),
            options=_SERVER_OPTIONS,
            maximum_concurrent_rpcs=None,
        )
        pb_grpc.add_ScsServicer_to_server(_Data(self._handler), server)
        cpb_grpc.add_ScsControlServicer_to_server(_Control(self._handler), server)
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop serving; connected clients see UNAVAILABLE until :meth:`start`."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- caches ---------------------------------------------------------------------------------
    def create_cache(self, name: str) -> None:
        with self._state.lock:
            self._state.caches.setdefault(name, {})

    def cache_names(self) -> list[str]:
        with self._state.lock:
            return sorted(self._state.caches)

    def raw_get(self, cache: str, key: bytes) -> bytes | None:
        """Read an item directly (tests): ``None`` if absent, expired or not a scalar."""
        with self._state.lock:
            item = self._state.caches.get(cache, {}).get(key)
        if item is None or item.expires <= time.monotonic() or not isinstance(item.value, bytes):
            return None
        return item.value

    def raw_set(self, cache: str, key: bytes, value: bytes, ttl: float = 3600.0) -> None:
        """Write an item directly (tests), bypassing gRPC and faults."""
        with self._state.lock:
            self._state.caches.setdefault(cache, {})[key] = _Item(value, time.monotonic() + ttl)

    def calls(self) -> dict[str, int]:
        """RPCs received so far, by name (counting failed and injected ones)."""
        with self._state.lock:
            return dict(self._state.calls)

    # -- faults ---------------------------------------------------------------------------------
    def fail(
        self,
        code: grpc.StatusCode | str = grpc.StatusCode.UNAVAILABLE,
        *,
        rpcs: str | Iterable[str] | None = None,
        count: int | None = None,
    ) -> None:
        """Abort matching RPCs (``rpcs``, default all) with ``code``, ``count`` times or forever."""
        with self._state.lock:
            self._state.faults.append(
                _Fault(code=_status(code), rpcs=_rpc_set(rpcs), remaining=count)
            )

    def delay(
        self,
        seconds: float,
        *,
        rpcs: str | Iterable[str] | None = None,
        count: int | None = None,
    ) -> None:
        """Make matching RPCs wait ``seconds`` before answering (stacks with other delays)."""
        with self._state.lock:
            self._state.faults.append(_Fault(delay=seconds, rpcs=_rpc_set(rpcs), remaining=count))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()


def main(argv: list[str] | None = None, *, ready: Callable[[str], None] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backends.momento",
        description="Local server speaking Momento's gRPC protocol (for the momento SDK).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port (default)")
    parser.add_argument(
        "--cache", action="append", default=[], help="create this cache at start (repeatable)"
    )
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="add this delay to every RPC (emulated RTT)"
    )
    args = parser.parse_args(argv)
    server = MomentoLocalServer(args.host, args.port, caches=args.cache).start()
    if args.delay_ms:
        server.delay(args.delay_ms / 1000)
    print(server.address, flush=True)
    if ready is not None:
        ready(server.address)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        server.stop(grace=0.5)
        print("momento-local stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
