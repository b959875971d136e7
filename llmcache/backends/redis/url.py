"""Redis URLs: what they name (TLS, nodes, database, credentials) and SCAN pattern escaping.

URL forms::

    redis://[[username]:password@]host[:port][/db][?option=value...]
    rediss://...                         TLS (ElastiCache in-transit encryption)
    valkey://..., valkeys://...          the same, for Valkey
    redis+cluster://host:port[,host:port...]   cluster mode enabled (db must be 0)

User name and password are percent-decoded; an empty one counts as absent. No driver import.

Example::

    from llmcache.backends.redis.url import parse_redis_url

    url = parse_redis_url("rediss://app:secret@cache.example.com:6380/2")
    assert (url.tls, url.nodes, url.db, url.where) == (
        True, (("cache.example.com", 6380),), 2, "cache.example.com:6380")
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from llmcache.errors import ConfigError
from llmcache.registry import redact_url

__all__ = ["DEFAULT_PORT", "RedisURL", "glob_escape", "parse_redis_url"]

DEFAULT_PORT = 6379
_BASE_SCHEMES = {"redis": False, "rediss": True, "valkey": False, "valkeys": True}


@dataclass(frozen=True)
class RedisURL:
    """What a Redis URL says, credentials included (never put this object in a message)."""

    tls: bool
    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None

    @property
    def where(self) -> str:
        """``host:port[,host:port]``: how messages name the server (no credentials)."""
        return ",".join(f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in self.nodes)


def _node(text: str, url_for_errors: str) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise ConfigError(f"cache URL {url_for_errors!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        # A port that is not a number may be a password that lost its "@": never echo it.
        shown = f" {port_text!r}" if port_text.isdigit() else ""
        raise ConfigError(f"invalid port{shown} in cache URL {url_for_errors!r}: expected 1-65535")
    return host, int(port_text)


def parse_redis_url(url: str, *, cluster: bool = False) -> RedisURL:
    """Split ``url``; a :class:`ConfigError` names what is wrong (never the password)."""
    parts = urlsplit(url)
    base, _, suffix = parts.scheme.lower().partition("+")
    if base not in _BASE_SCHEMES or suffix not in ("", "cluster"):
        raise ConfigError(
            f"unsupported scheme {parts.scheme!r} for the Redis backend; use one of "
            "redis, rediss, valkey, valkeys and their +cluster forms"
        )
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    safe_url = redact_url(url)  # what messages show: never the password, even when malformed
    username, _, password = userinfo.partition(":")
    text_nodes = [n.strip() for n in hostlist.split(",")] if hostlist else []
    nodes = tuple(_node(n, safe_url) for n in text_nodes) or (("localhost", DEFAULT_PORT),)
    if len(nodes) > 1 and not cluster:
        raise ConfigError(
            f"cache URL {safe_url!r} names {len(nodes)} hosts; several hosts are a cluster: "
            "use redis+cluster:// (or rediss+cluster://)"
        )
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(
            f"invalid database {db_text!r} in cache URL {safe_url!r}: expected /0-/15"
        )
    if cluster and int(db_text) != 0:
        raise ConfigError(f"a Redis cluster has only database 0, not /{db_text} ({safe_url!r})")
    return RedisURL(
        tls=_BASE_SCHEMES[base],
        nodes=nodes,
        db=int(db_text),
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\^-" else c for c in text)
