"""A local server speaking Momento's gRPC protocol, for the real ``momento`` SDK.

Run it: ``python -m backends.momento --port 0`` (prints ``host:port``), or start it in-process::

    from backends.momento import MomentoLocalServer

    with MomentoLocalServer(caches=["llm"]) as server:
        url = f"momento://llm?local={server.address}"
"""

from backends.momento.server import MAX_ITEM_BYTES, MAX_TTL_MS, MomentoLocalServer

__all__ = ["MAX_ITEM_BYTES", "MAX_TTL_MS", "MomentoLocalServer"]
