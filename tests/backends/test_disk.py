"""disk:// on its own: persistence across processes, URL options (contract: test_contract.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import diskcache
import pytest

from llmcache.backends.disk import DiskBackend, DiskOptions
from llmcache.errors import ConfigError
from llmcache.registry import create_backend


def test_entries_survive_a_new_process(tmp_path: Path) -> None:
    with create_backend(f"disk://{tmp_path}", namespace="app") as store:
        store.set("k", b"written by the test process", ttl=60)
    code = (
        "from llmcache.registry import create_backend\n"
        f"s = create_backend('disk://{tmp_path}', namespace='app')\n"
        "print(s.get('k').decode()); s.set('k2', b'from child', ttl=60); s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "written by the test process"
    with create_backend(f"disk://{tmp_path}", namespace="app") as store:
        assert store.get("k2") == b"from child"


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom llmcache.registry import create_backend\n"
        f"s = create_backend('disk://{tmp_path}', namespace='app')\n"
        "w = sys.argv[1]\n"
        "for i in range(200): s.set(f'{w}-{i}', f'{w}:{i}'.encode())\n"
        "s.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with create_backend(f"disk://{tmp_path}", namespace="app") as store:
        for w in range(4):
            assert all(store.get(f"{w}-{i}") == f"{w}:{i}".encode() for i in range(200))


def test_size_limit_is_parsed_with_units(tmp_path: Path) -> None:
    store = create_backend(f"disk://{tmp_path}?size_limit=10MB")
    assert isinstance(store, DiskBackend)
    assert store.options.size_limit == 10_000_000
    store.close()
    # ... and reached diskcache: its own client reads the limit stored in the directory.
    with diskcache.Cache(str(tmp_path)) as raw:
        assert raw.size_limit == 10_000_000
    with pytest.raises(ConfigError, match=r"'ten'.*size_limit"):
        create_backend(f"disk://{tmp_path}?size_limit=ten")


def test_disk_url_needs_a_directory() -> None:
    with pytest.raises(ConfigError, match="give a directory"):
        create_backend("disk://")


@pytest.mark.parametrize("policy", ["least-recently-stored", "least-recently-used", "none"])
def test_get_reads_inline_values_file_values_and_refuses_foreign_ones(
    tmp_path: Path, policy: str
) -> None:
    store = DiskBackend(DiskOptions(path=tmp_path, eviction_policy=policy), namespace="t")
    big = bytes(range(256)) * 200  # 51,200 bytes: diskcache keeps it in a file, not in SQLite
    try:
        store.set("small", b"inline bytes")
        store.set("big", big)
        store.set("gone", b"x", ttl=0.001)
        foreign = diskcache.Cache(str(tmp_path))
        foreign.set(store._key("text"), "a str value")  # not bytes: not ours
        foreign.set(store._key("obj"), {"a": 1})  # pickled: never unpickled
        foreign.close()
        time.sleep(0.01)
        assert store.get("small") == b"inline bytes"
        assert store.get("big") == big
        assert store.get("gone") is None  # expired
        assert store.get("missing") is None
        assert store.get("text") is None
        assert store.get("obj") is None
    finally:
        store.close()
