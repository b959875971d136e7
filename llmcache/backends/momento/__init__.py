"""Momento backend: ``momento://<cache-name>`` on the official SDK, sync and native async.

The API key comes from settings (``LLMCACHE_MOMENTO_API_KEY``, falling back to ``MOMENTO_API_KEY``;
v2 keys also need ``LLMCACHE_MOMENTO_ENDPOINT`` / ``MOMENTO_ENDPOINT``), never from the URL: the
:class:`MomentoOptions` fields declare those variables and :mod:`llmcache.config` reads them.
``?local=host:port`` talks to a local server (``python -m backends.momento``) without a key.

Options (URL query or keywords): ``configuration`` (laptop | in_region | low_latency | lambda),
``timeout`` (seconds per request), ``default_ttl`` (seconds, at most 24 h: Momento needs a TTL),
``create_cache`` (create the cache if missing), ``generation_refresh`` (seconds a process trusts
its copy of the namespace generation, see below), ``max_concurrency`` (sync batch threads).

``clear`` removes only this namespace, never the shared cache: every key carries the namespace
*generation* (``llmcache:<ns>:g<gen>:<key>``) and ``clear`` increments it with Momento's atomic
``Increment`` (details in :mod:`llmcache.backends.momento.generation`). Other processes see a
clear within ``generation_refresh`` seconds; old entries expire on their own TTL.

Modules: :mod:`~llmcache.backends.momento.options` (options and limits, no SDK import),
:mod:`~llmcache.backends.momento.sdk` (credentials, configurations, error mapping),
:mod:`~llmcache.backends.momento.clients` (client lifecycle and the budget of a call),
:mod:`~llmcache.backends.momento.generation`, :mod:`~llmcache.backends.momento.lists` and
:mod:`~llmcache.backends.momento.backend` (:class:`MomentoBackend`).

Example::

    from llmcache.backends.momento import MomentoBackend

    with MomentoBackend.from_url("momento://llm?local=127.0.0.1:8080&create_cache=true") as store:
        store.set("k", b"v", ttl=60)
        assert store.get("k") == b"v"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmcache.backends._lazy import lazy_attributes

# Only the options load eagerly: settings import them to learn the declared environment
# variables, and that must work without the momento SDK (the ``momento`` extra).
from llmcache.backends.momento.options import MomentoOptions

if TYPE_CHECKING:
    from llmcache.backends.momento.backend import MomentoBackend
    from llmcache.backends.momento.sdk import MomentoError, MomentoUnavailable

__all__ = ["MomentoBackend", "MomentoError", "MomentoOptions", "MomentoUnavailable"]

_LAZY = {
    "MomentoBackend": "llmcache.backends.momento.backend",
    "MomentoError": "llmcache.backends.momento.sdk",
    "MomentoUnavailable": "llmcache.backends.momento.sdk",
}

__getattr__ = lazy_attributes(__name__, _LAZY, extra="momento")
