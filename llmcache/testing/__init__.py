"""The contract every backend passes, shipped for plug-in authors.

Subclass :class:`BackendContract` in a test module and provide a ``make_backend`` fixture that
returns a factory ``namespace -> Backend`` (each test uses its own random namespace). Every test
runs twice: once through the sync methods and once through the async twins.

Example::

    import pytest
    from llmcache.backends.memory import MemoryBackend
    from llmcache.testing import BackendContract

    class TestMemory(BackendContract):
        @pytest.fixture
        def make_backend(self):
            return lambda namespace: MemoryBackend(namespace=namespace)

Two more fixtures say what a backend's store is like; override them when the defaults do not fit:

- ``make_neighbour``: builds a backend on the *same store* under another namespace, for the
  namespace-isolation tests. The default is ``make_backend`` (right for disk, Redis, Momento:
  namespaces share the store). A backend whose instances are separate stores (memory) makes it
  ``pytest.skip(reason)``, so those tests skip instead of passing against two empty stores.
- ``foreign``: raw access to the store, bypassing the backend (a :class:`ForeignKeys`), to prove
  ``clear`` leaves keys it does not own alone. The default skips that test.
"""

from __future__ import annotations

from llmcache.errors import require_extra

require_extra("pytest", "testing", "llmcache.testing")

from llmcache.testing.contract import BackendContract  # noqa: E402 - after the extra's check
from llmcache.testing.ops import (  # noqa: E402
    REQUIRE_SERVERS_ENV,
    ForeignKeys,
    Ops,
    server_missing,
    wait_until,
)

__all__ = [
    "REQUIRE_SERVERS_ENV",
    "BackendContract",
    "ForeignKeys",
    "Ops",
    "server_missing",
    "wait_until",
]
