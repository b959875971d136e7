"""The backend contract (``llmcache.testing.BackendContract``), once, on every backend.

``store_target`` (tests/conftest.py) runs it on memory, disk, Redis standalone, Redis TLS+AUTH,
Redis cluster and Momento; each test runs through the sync and the async methods.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmcache.backends.base import Backend
from llmcache.testing import BackendContract, ForeignKeys
from tests.backends.clients import StoreTarget


class TestContract(BackendContract):
    @pytest.fixture
    def make_backend(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        return store_target.make

    @pytest.fixture
    def make_neighbour(self, store_target: StoreTarget) -> Callable[[str], Backend]:
        return store_target.make_neighbour

    @pytest.fixture
    def foreign(self, store_target: StoreTarget) -> ForeignKeys:
        store_target.raw()  # skips when the backend has no store outside the instance
        return store_target
