"""redis://, rediss://, redis+cluster:// beyond the contract: URLs, errors, faults, cluster spread.

The contract and LangChain's standard suites run on all three server shapes in
tests/test_contract.py and tests/test_langchain_suites.py. The servers are real redis-server
processes on free loopback ports (never the machine's 6379), started once per session by the
fixtures of tests/conftest.py (``standalone``, ``tls_server``, ``cluster``, ``own_server``) from
``backends.redis.servers``. Without redis-server the tests skip, or fail when
LLMCACHE_REQUIRE_SERVERS=1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from backends.redis import servers
from llmcache.backends.redis import RedisBackend, RedisClusterBackend
from llmcache.errors import BackendError, BackendUnavailable, ConfigError
from llmcache.registry import create_backend
from llmcache.testing import Ops
from tests.backends.clients import REDIS_RELAXED as RELAXED
from tests.backends.clients import new_namespace as ns
from tests.backends.clients import redis_client

pytestmark = pytest.mark.redis


# -- beyond the contract (tests/test_contract.py runs it on all three shapes) ----------------------
@pytest.fixture(params=["standalone", "tls_server", "cluster"])
def any_server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(any_server: Any, mode: str) -> AsyncIterator[Ops]:
    ops = Ops(create_backend(any_server.url, namespace=ns(), **RELAXED), mode)
    yield ops
    await ops.clear()
    await ops.close()


@pytest.fixture
def raw(any_server: Any) -> Iterator[Any]:
    """redis-py's own client for the server (no namespace, no key prefix)."""
    client = redis_client(any_server)
    yield client
    client.close()


async def test_clear_removes_thousands_of_keys_everywhere(store: Ops) -> None:
    items = {f"k{i}": b"v" for i in range(2500)}  # > one SCAN/UNLINK batch, all slots
    await store.set_many(items, ttl=60)
    assert store.backend.info()["entries"] == 2500  # type: ignore[attr-defined]
    await store.clear()
    assert store.backend.info()["entries"] == 0  # type: ignore[attr-defined]


async def test_ttl_is_set_in_milliseconds(store: Ops, raw: Any) -> None:
    await store.set("k", b"v", ttl=42.5)
    # Keys are ``llmcache:<namespace>:<key>`` (documented): key_prefix + key.
    pttl = raw.pttl(store.backend.key_prefix + "k")
    assert 42_000 < pttl <= 42_500


def test_info_reports_the_elasticache_shape(standalone: Any) -> None:
    with create_backend(standalone.url, namespace=ns()) as store:
        store.set("k", b"v")
        info = store.info()  # type: ignore[attr-defined]
        store.clear()
    assert info["entries"] == 1
    assert info["maxmemory_policy"] == "volatile-lru"
    assert info["maxmemory"] == 256 * 1024 * 1024
    assert info["redis_version"]


def test_keys_spread_over_every_master(cluster: Any) -> None:
    client = redis_client(cluster)
    try:
        with create_backend(cluster.url, namespace=ns()) as store:
            store.set_many({f"k{i}": b"v" for i in range(60)})  # type: ignore[attr-defined]
            per_node = [client.dbsize(target_nodes=n) for n in client.get_primaries()]
            store.clear()
    finally:
        client.close()
    assert len(per_node) == 3 and all(count > 0 for count in per_node)


# -- URLs and options (no server needed) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "cls", "tls"),
    [
        ("redis://localhost:6380/2", RedisBackend, False),
        ("rediss://localhost", RedisBackend, True),
        ("valkey://localhost", RedisBackend, False),
        ("valkeys://localhost", RedisBackend, True),
        ("redis+cluster://a:7000,b:7001", RedisClusterBackend, False),
        ("rediss+cluster://cfg.example.com:6379", RedisClusterBackend, True),
        ("valkey+cluster://a:7000", RedisClusterBackend, False),
        ("valkeys+cluster://cfg.example.com:6379", RedisClusterBackend, True),
    ],
)
def test_schemes_pick_class_and_tls(url: str, cls: type[RedisBackend], tls: bool) -> None:
    store = create_backend(url)
    assert type(store) is cls
    assert store.url.tls is tls  # type: ignore[attr-defined]


def test_url_parts_and_typed_options() -> None:
    store = create_backend(
        "redis://app%40x:p%3Ass@cache.example.com:6380/3?socket_timeout=0.1&retries=0&default_ttl=60"
    )
    assert isinstance(store, RedisBackend)
    assert store.url.nodes == (("cache.example.com", 6380),) and store.url.db == 3
    assert (store.url.username, store.url.password) == ("app@x", "p:ss")
    assert store.username == "app@x"  # the password is checked against a server below
    assert (store.options.socket_timeout, store.options.retries, store.default_ttl) == (0.1, 0, 60)
    assert "p:ss" not in repr(store) and "p:ss" not in repr(store.options)
    cluster = create_backend("redis+cluster://a:7000, [::1]:7001,b")
    assert cluster.url.nodes == (("a", 7000), ("::1", 7001), ("b", 6379))  # type: ignore[attr-defined]


def test_defaults_are_cache_sized() -> None:
    store = create_backend("redis://localhost")
    assert isinstance(store, RedisBackend)
    assert store.options.socket_timeout <= 0.25 and store.options.socket_connect_timeout <= 0.25
    assert store.options.retries <= 1


def _logs_in(store: Any) -> bool:
    """True when ``store`` authenticates to the server (a wrong or missing password raises)."""
    with store:
        store.set("login", b"ok", ttl=5)
        ok = bool(store.get("login") == b"ok")
        store.clear()
    return ok


def test_credentials_from_the_environment_reach_the_server_and_url_credentials_stand_without(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tls_server: Any
) -> None:
    from llmcache.config import load_settings
    from llmcache.registry import backend_from_settings

    monkeypatch.chdir(tmp_path)  # no llmcache.toml / .env from elsewhere
    ca = quote(str(tls_server.workdir / "ca.crt"))
    relaxed = "&".join(f"{k}={v}" for k, v in RELAXED.items())
    bare = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={ca}&{relaxed}"
    with_creds = f"{tls_server.url}&{relaxed}"  # the ACL user and password in the URL
    monkeypatch.setenv("LLMCACHE_REDIS_USERNAME", servers.ACL_USER)
    monkeypatch.setenv("LLMCACHE_REDIS_PASSWORD", servers.ACL_PASSWORD)
    store = backend_from_settings(load_settings(url=bare, namespace=ns()))
    assert isinstance(store, RedisBackend) and store.username == servers.ACL_USER
    assert servers.ACL_PASSWORD not in repr(store.options)
    assert _logs_in(store)  # the server took the password from the environment
    monkeypatch.delenv("LLMCACHE_REDIS_USERNAME")
    monkeypatch.delenv("LLMCACHE_REDIS_PASSWORD")
    store = backend_from_settings(load_settings(url=with_creds, namespace=ns()))
    assert store.username == servers.ACL_USER  # type: ignore[attr-defined]
    assert _logs_in(store)
    # None is "not given", as keyword options too: the URL's credentials stand
    store = create_backend(with_creds, namespace=ns(), username=None, password=None)
    assert servers.ACL_PASSWORD not in repr(store.options)
    assert _logs_in(store)
    # and without them the server refuses: the checks above are not vacuous
    with pytest.raises(BackendError):
        _logs_in(create_backend(bare, namespace=ns()))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h?socket_timout=1", r"socket_timout.*valid options: .*socket_timeout"),
        ("redis://h?socket_timeout=soon", r"'soon'.*socket_timeout"),
        ("redis://h?retries=50", r"retries"),
        ("redis://h?ssl_cert_reqs=maybe", r"ssl_cert_reqs"),
        ("redis://h:99999", r"invalid port '99999'"),
        ("redis://h/zero", r"invalid database 'zero'"),
        ("redis://u:pw@a:1,b:2", r"several hosts are a cluster: use redis\+cluster://"),
        ("redis+cluster://a:7000/1", r"only database 0"),
    ],
)
def test_bad_urls_are_config_errors_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        create_backend(url)
    assert "pw" not in str(info.value)


# -- errors a user can act on ----------------------------------------------------------------------
def _both_sides_fail(url: str, **options: Any) -> list[BackendError]:
    store = create_backend(url, **options)
    errors: list[BackendError] = []
    try:
        with pytest.raises(BackendError) as sync_info:
            store.get("k")
        errors.append(sync_info.value)

        async def async_side() -> None:
            with pytest.raises(BackendError) as async_info:
                await store.aget("k")
            errors.append(async_info.value)
            await store.aclose()

        asyncio.run(async_side())
    finally:
        store.close()
    return errors


def test_wrong_password_names_the_user_not_the_password(tls_server: Any) -> None:
    url = f"rediss://llmcache:wrong-pw@127.0.0.1:{tls_server.port}/0"
    ca = str(tls_server.workdir / "ca.crt")
    for error in _both_sides_fail(url, ssl_ca_certs=ca):
        assert "authentication failed for user 'llmcache'" in str(error)
        assert "wrong-pw" not in str(error)


def test_missing_password_says_where_to_put_it(tls_server: Any) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0"
    for error in _both_sides_fail(url, ssl_ca_certs=str(tls_server.workdir / "ca.crt")):
        assert "no password was given" in str(error) and "LLMCACHE_REDIS_PASSWORD" in str(error)


def test_auth_token_from_settings_logs_in_as_the_default_user(tls_server: Any) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0"
    ca = str(tls_server.workdir / "ca.crt")
    with create_backend(url, ssl_ca_certs=ca, password=SecretStr(servers.AUTH_TOKEN)) as store:
        store.set("k", b"v")
        assert store.get("k") == b"v"
        store.delete("k")


def test_client_certificate_options(tls_server: Any) -> None:
    d = tls_server.workdir
    options = {"ssl_certfile": str(d / "client.crt"), "ssl_keyfile": str(d / "client.key")}
    with create_backend(tls_server.url, namespace=ns(), **options) as store:
        store.set("k", b"v")
        assert store.get("k") == b"v"
        store.clear()


def test_untrusted_certificate_says_set_ssl_ca_certs(tls_server: Any) -> None:
    url = f"rediss://:{servers.AUTH_TOKEN}@127.0.0.1:{tls_server.port}/0"
    for error in _both_sides_fail(url):
        assert "certificate" in str(error) and "ssl_ca_certs" in str(error)


def test_plain_url_on_a_tls_port_says_use_rediss(tls_server: Any) -> None:
    for error in _both_sides_fail(f"redis://127.0.0.1:{tls_server.port}/0"):
        assert isinstance(error, BackendUnavailable) and "use rediss://" in str(error)


def test_tls_url_on_a_plain_port_says_use_redis(standalone: Any) -> None:
    for error in _both_sides_fail(f"rediss://127.0.0.1:{standalone.port}/0"):
        assert isinstance(error, BackendUnavailable) and "use redis://" in str(error)


def test_unknown_host_is_unavailable_and_named() -> None:
    for error in _both_sides_fail("redis://no-such-host.invalid:6379/0"):
        assert isinstance(error, BackendUnavailable) and "no-such-host.invalid" in str(error)


def test_cluster_without_reachable_nodes_is_unavailable() -> None:
    port = servers.free_port(cluster=True)
    for error in _both_sides_fail(f"redis+cluster://127.0.0.1:{port}"):
        assert isinstance(error, BackendUnavailable)


# -- faults against a real server process --------------------------------------------------------
def _every_op(store: RedisBackend) -> dict[str, Callable[[], Any]]:
    return {
        "get": lambda: store.get("k"),
        "set": lambda: store.set("k", b"v"),
        "delete": lambda: store.delete("k"),
        "clear": store.clear,
        "get_many": lambda: store.get_many(["k", "k2"]),
        "set_many": lambda: store.set_many({"k": b"v", "k2": b"w"}),
        "add": lambda: store.add("k3", b"v"),
    }


def _every_aop(store: RedisBackend) -> dict[str, Callable[[], Any]]:
    return {
        "aget": lambda: store.aget("k"),
        "aset": lambda: store.aset("k", b"v"),
        "adelete": lambda: store.adelete("k"),
        "aclear": store.aclear,
        "aget_many": lambda: store.aget_many(["k", "k2"]),
        "aset_many": lambda: store.aset_many({"k": b"v", "k2": b"w"}),
        "aadd": lambda: store.aadd("k3", b"v"),
    }


async def _assert_all_fail_within(store: RedisBackend, limit: float) -> None:
    for name, op in _every_op(store).items():
        start = time.monotonic()
        with pytest.raises(BackendUnavailable):
            op()
        assert time.monotonic() - start < limit, name
    for name, aop in _every_aop(store).items():
        start = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await aop()
        assert time.monotonic() - start < limit, name


async def _assert_all_work(store: RedisBackend) -> None:
    for op in _every_op(store).values():
        op()
    for aop in _every_aop(store).values():
        await aop()
    store.set("k", b"back")
    assert store.get("k") == b"back" and await store.aget("k") == b"back"


async def test_killed_server_fails_fast_and_restart_recovers(own_server: Any) -> None:
    store = create_backend(own_server.url, namespace=ns())
    assert isinstance(store, RedisBackend)
    try:
        await _assert_all_work(store)  # both pools now hold live connections
        own_server.kill()
        await _assert_all_fail_within(store, limit=0.5)
        own_server.restart()  # same port: the same backend object reconnects
        await _assert_all_work(store)
    finally:
        await store.aclose()


async def test_hung_server_costs_one_timeout_per_op_and_recovers(own_server: Any) -> None:
    store = create_backend(own_server.url, namespace=ns(), socket_timeout=0.2)
    assert isinstance(store, RedisBackend)
    try:
        await _assert_all_work(store)
        os.kill(own_server.proc.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
        try:
            # One socket timeout (0.2 s) per op, no retry storm; clear = SCAN + pipeline.
            await _assert_all_fail_within(store, limit=0.45)
        finally:
            os.kill(own_server.proc.pid, signal.SIGCONT)
        await _assert_all_work(store)
    finally:
        await store.aclose()


def test_async_client_follows_the_event_loop(standalone: Any) -> None:
    store = create_backend(standalone.url, namespace=ns())
    try:
        # Two asyncio.run calls: two loops. The client of the first is closed as its loop ends
        # (no ResourceWarning, which pytest turns into an error) and the second gets its own.
        asyncio.run(store.aset("k", b"v"))
        assert asyncio.run(store.aget("k")) == b"v"
        store.clear()
    finally:
        store.close()


# -- LangChain end to end ------------------------------------------------------------------------
def _chat(cache: Any, n: int = 50) -> Any:
    from langchain_core.language_models import FakeListChatModel

    # Answers "answer-0", "answer-1", ... in turn: a repeated answer can only come from the cache.
    return FakeListChatModel(responses=[f"answer-{i}" for i in range(n)], cache=cache)


def _langchain_cache(url: str, **options: Any) -> Any:
    from llmcache.adapters.langchain import LangChainCache

    return LangChainCache.from_url(url, namespace=ns(), **RELAXED, **options)


@pytest.mark.langchain
def test_langchain_chat_hits_on_every_server_shape(any_server: Any) -> None:
    cache = _langchain_cache(any_server.url)
    model = _chat(cache)
    try:
        first = model.invoke("What is the capital of France?").content
        assert model.invoke("What is the capital of France?").content == first
        assert model.invoke("And of Spain?").content != first
        assert cache.stats["hits"] == 1 and cache.stats["errors"] == 0
    finally:
        cache.clear()
        cache.close()


@pytest.mark.langchain
async def test_langchain_async_hits_on_every_server_shape(any_server: Any) -> None:
    cache = _langchain_cache(any_server.url)
    model = _chat(cache)
    try:
        answers = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(8)))
        again = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(8)))
        assert [a.content for a in again] == [a.content for a in answers]
        assert cache.stats["hits"] == 8 and cache.stats["errors"] == 0
    finally:
        await cache.aclear()
        await cache.aclose()


def _fault_cache(url: str) -> Any:
    from llmcache import CircuitBreaker, LLMCache
    from llmcache.adapters.langchain import LangChainCache

    backend = create_backend(url, namespace=ns())
    return LangChainCache(LLMCache(backend, breaker=CircuitBreaker(failures=3, cooldown=0.5)))


@pytest.mark.langchain
async def test_langchain_calls_survive_a_killed_server_and_hits_resume(own_server: Any) -> None:
    cache = _fault_cache(own_server.url)
    model = _chat(cache)
    try:
        cached = model.invoke("warm").content
        assert model.invoke("warm").content == cached
        own_server.kill()
        answers = [model.invoke("warm").content for _ in range(3)]
        answers += [(await model.ainvoke("warm")).content for _ in range(3)]
        # Every call got the model's own (fresh) answer; nothing was raised to the caller.
        assert len(set(answers)) == 6 and cached not in answers
        assert cache.stats["errors"] >= 3 and cache.stats["skipped_open_circuit"] >= 1
        own_server.restart()
        await asyncio.sleep(0.6)  # the breaker's cooldown: its probe finds the store back
        fresh = model.invoke("after restart").content
        assert model.invoke("after restart").content == fresh
        assert (await model.ainvoke("after restart")).content == fresh
    finally:
        await cache.aclose()


@pytest.mark.langchain
def test_langchain_call_on_a_hung_server_costs_at_most_its_timeouts(own_server: Any) -> None:
    cache = _fault_cache(own_server.url)
    model = _chat(cache)
    try:
        model.invoke("warm")
        os.kill(own_server.proc.pid, signal.SIGSTOP)
        try:
            costs = []
            for i in range(5):
                start = time.monotonic()
                assert model.invoke(f"q{i}").content.startswith("answer-")
                costs.append(time.monotonic() - start)
        finally:
            os.kill(own_server.proc.pid, signal.SIGCONT)
        # Until the breaker opens (3 faults): one 250 ms timeout per call (the lookup's; the
        # update after a failed lookup is skipped). After: the store is not even tried.
        print("LangChain call cost with a hung Redis (s):", [round(c, 3) for c in costs])
        assert max(costs[:3]) < 0.25 + 0.15
        assert max(costs[3:]) < 0.05
    finally:
        cache.close()


@pytest.mark.langchain
@pytest.mark.parametrize("host", ["cached", "global"])
async def test_single_flight_call_on_a_hung_server_costs_one_timeout(
    own_server: Any, host: str
) -> None:
    """Single-flight takes a store lease before calling the model; when the call's lookup has
    just timed out, the lease is not tried (a second timeout), and neither is the write."""
    from langchain_core.language_models import FakeListChatModel

    from llmcache import CircuitBreaker, LLMCache
    from llmcache.adapters.langchain import LangChainCache, cached

    backend = create_backend(own_server.url, namespace=ns())
    cache = LLMCache(backend, breaker=CircuitBreaker(failures=3, cooldown=0.5))
    responses = [f"answer-{i}" for i in range(20)]
    if host == "cached":
        model: Any = cached(FakeListChatModel(responses=responses), cache=cache, single_flight=True)
    else:
        model = FakeListChatModel(
            responses=responses, cache=LangChainCache(cache, single_flight=True)
        )
    try:
        model.invoke("warm")
        os.kill(own_server.proc.pid, signal.SIGSTOP)
        try:
            costs = []
            for i in range(3):  # before the breaker opens: each call pays the lookup's timeout
                start = time.monotonic()
                assert model.invoke(f"q{i}").content.startswith("answer-")
                costs.append(time.monotonic() - start)
                start = time.monotonic()
                assert (await model.ainvoke(f"aq{i}")).content.startswith("answer-")
                costs.append(time.monotonic() - start)
        finally:
            os.kill(own_server.proc.pid, signal.SIGCONT)
        print(
            f"{host} single-flight call cost with a hung Redis (s):", [round(c, 3) for c in costs]
        )
        assert max(costs) < 0.25 + 0.15, costs  # one 250 ms timeout, not two or three
        assert cache.stats["skipped_after_fault"] >= 6  # the leases and the writes
    finally:
        await cache.aclose()


def test_doctor_says_what_is_wrong(
    tls_server: Any, standalone: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from llmcache.cli import app

    monkeypatch.chdir(tmp_path)  # no llmcache.toml / .env from elsewhere
    ca = tls_server.workdir / "ca.crt"
    runner = CliRunner()
    healthy = runner.invoke(app, ["doctor", "--url", tls_server.url])
    assert healthy.exit_code == 0, healthy.output
    cases = {  # url: (what the error says, exit code: 4 the store failed, 3 configuration)
        f"rediss://llmcache:wrong-pw@127.0.0.1:{tls_server.port}/0?ssl_ca_certs={ca}": (
            "authentication failed for user 'llmcache'",
            4,
        ),
        f"redis://127.0.0.1:{tls_server.port}/0": ("use rediss://", 4),
        f"rediss://127.0.0.1:{standalone.port}/0": ("use redis://", 4),
        "redis://no-such-host.invalid:6379/0": ("no-such-host.invalid", 4),
        "redis://127.0.0.1:6379/0?socket_timeout=soon": ("socket_timeout", 3),
    }
    for url, (message, code) in cases.items():
        result = runner.invoke(app, ["doctor", "--url", url])
        assert result.exit_code == code, url
        assert message in result.stderr, result.stderr
        assert "wrong-pw" not in result.output


def test_64_concurrent_lookups_on_a_small_pool_all_hit(standalone: Any) -> None:
    """More concurrent lookups than pooled connections queue in order: no pool timeouts,
    so no store faults, no open circuit and no spurious misses."""
    from llmcache import LLMCache

    async def run() -> tuple[int, int]:
        cache = LLMCache.from_url(
            standalone.url, namespace=ns(), max_connections=2, socket_timeout=0.05
        )
        llm = "[('_type', 'fake')]"
        await cache.aupdate("p", llm, {"text": "x" * 2000})

        async def worker() -> int:
            return sum([await cache.alookup("p", llm) is None for _ in range(30)])

        misses = sum(await asyncio.gather(*(worker() for _ in range(64))))
        errors = cache.stats["errors"]
        await cache.aclear()
        await cache.aclose()
        return misses, errors

    assert asyncio.run(run()) == (0, 0)


# -- the embeddings byte store (the standard suites: tests/test_langchain_suites.py) --------
@pytest.mark.langchain
def test_cache_backed_embeddings_survive_a_killed_server(own_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainByteStore
    from tests.langchain_checks import TEXTS, embedder

    store = LangChainByteStore.from_url(own_server.url, namespace=ns())
    cached, model = embedder(store)
    try:
        vectors = cached.embed_documents(TEXTS)
        own_server.kill()
        started = time.monotonic()
        assert cached.embed_documents(TEXTS) == vectors  # computed again, nothing raised
        assert time.monotonic() - started < 1.0
        assert model.embedded == 2 * len(TEXTS) and store.stats["errors"] >= 1
    finally:
        store.close()


# -- chat history on Redis lists -----------------------------------------------------------------
@pytest.mark.langchain
async def test_chat_history_trims_and_sets_the_ttl_in_milliseconds(
    any_server: Any, raw: Any
) -> None:
    from llmcache.adapters.langchain import LangChainChatHistory

    backend = create_backend(any_server.url, namespace=ns(), **RELAXED)
    try:
        history = LangChainChatHistory(backend, "trim", max_messages=2, ttl=30)
        history.add_user_message("1")
        await history.aadd_messages([])
        history.add_ai_message("2")
        history.add_user_message("3")
        assert [m.content for m in history.messages] == ["2", "3"]
        pttl = raw.pttl(backend.key_prefix + "trim")
        assert 29_000 < pttl <= 30_000
    finally:
        await backend.aclear()
        await backend.aclose()


@pytest.mark.langchain
def test_chat_history_fault_reaches_the_caller(own_server: Any) -> None:
    from llmcache.adapters.langchain import LangChainChatHistory

    history = LangChainChatHistory.from_url(own_server.url, session_id="s", namespace=ns())
    try:
        history.add_user_message("hi")
        own_server.kill()
        with pytest.raises(BackendUnavailable):
            history.add_ai_message("hello")
        with pytest.raises(BackendUnavailable):
            _ = history.messages
    finally:
        history.close()


async def test_list_range_many_reads_several_lists_in_one_pipeline(any_server: Any) -> None:
    """What the semantic index reads its buckets with: the same as list_range per key, in order,
    ``[]`` for a missing list; keys on several cluster nodes included."""
    backend = create_backend(any_server.url, namespace=ns(), **RELAXED)
    try:
        keys = [f"bucket-{i}" for i in range(12)]
        for i, key in enumerate(keys[:-2]):
            backend.list_push(key, [f"{i}-{j}".encode() for j in range(i % 3 + 1)])
        expected = [backend.list_range(k) for k in keys]
        assert expected[-1] == [] and expected[0] == [b"0-0"]
        assert backend.list_range_many(keys) == expected
        assert await backend.alist_range_many(keys) == expected
        assert backend.list_range_many([]) == []
    finally:
        backend.clear()
        await backend.aclose()
        backend.close()


async def test_logs_append_to_several_keys_and_keep_the_newest(any_server: Any) -> None:
    """The semantic index's buckets on Redis: one string per log, the same record appended to
    several keys (cluster: several nodes) in one pipeline, the newest ``max_bytes`` read back;
    a log never holds more than twice its bound; ttl renewed; absent logs read as b""."""
    backend = create_backend(any_server.url, namespace=ns(), **RELAXED)
    try:
        keys = [f"log-{i}" for i in range(8)]
        for n in range(40):
            record = n.to_bytes(4, "big")
            if n % 2:
                backend.log_append_many(keys, record, max_bytes=32, ttl=60)
            else:
                await backend.alog_append_many(keys, record, max_bytes=32, ttl=60)
        newest = b"".join(n.to_bytes(4, "big") for n in range(32, 40))
        assert backend.log_tail_many([*keys, "absent"], 32) == [newest] * 8 + [b""]
        assert await backend.alog_tail_many(keys[:2], 32) == [newest] * 2
        assert backend.log_tail_many(keys[:1], 8) == [newest[-8:]]
        for key in keys:  # bounded and expiring, on whichever node holds it
            full = backend._key(key)
            client = backend._client()
            assert 32 <= client.strlen(full) <= 64
            assert 0 < client.pttl(full) <= 60_000
        assert backend.log_tail_many([], 32) == []
        with pytest.raises(ConfigError, match="max_bytes"):
            backend.log_append_many(keys, b"x", max_bytes=0)
        backend.clear()
        assert backend.log_tail_many(keys, 32) == [b""] * 8  # clear removes logs too
    finally:
        backend.clear()
        await backend.aclose()
        backend.close()
