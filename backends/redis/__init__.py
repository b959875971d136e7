"""Throwaway redis-server processes (standalone, TLS + AUTH, cluster): see :mod:`.servers`.

Import it as ``from backends.redis import servers`` from a source checkout (the repository root
on ``sys.path``, as when pytest runs from it).
"""
