"""Throwaway Redis servers shaped like ElastiCache, for tests, CI, demos and benchmarks.

Three shapes, each on free loopback ports (never 6379) with a temp dir removed on stop:

- ``standalone``: one node, ``maxmemory 256mb``, ``maxmemory-policy volatile-lru``, no persistence
  (``backends/redis/elasticache.conf``) — ElastiCache with cluster mode disabled.
- ``tls``: the same node with in-transit encryption and AUTH: TLS only (``port 0``), certificates
  generated at start (a CA, a server certificate for 127.0.0.1/localhost and a client
  certificate), an AUTH token for the default user and an RBAC-style ACL user ``llmcache``.
- ``cluster``: three masters, no replicas (``backends/redis-cluster/cluster.conf``) — cluster mode
  enabled; ports stay <= 55535 because each node also listens on port + 10000 (the cluster bus).
- ``cluster-replicas``: three masters with one replica each and a short ``cluster-node-timeout``
  (500 ms), so a killed master's replica is promoted within ~1-2 s — for topology-change tests.
  :class:`Cluster` changes its topology the way an operator (or ElastiCache) does, with the real
  protocol: :meth:`Cluster.migrate_slots` (resharding: ``SETSLOT IMPORTING/MIGRATING``,
  ``MIGRATE`` in batches, ``SETSLOT NODE``, with a hook while the slots are migrating so clients
  get ASK), :meth:`Cluster.scale_out`, :meth:`Cluster.scale_in`, :meth:`Cluster.failover`
  (``CLUSTER FAILOVER`` on a replica) and :meth:`Cluster.kill_master` (SIGKILL; the replica is
  promoted). Every wait is bounded (:data:`TOPOLOGY_TIMEOUT`).

From a shell (prints the URL, stops on Ctrl-C / SIGTERM)::

    python backends/redis/servers.py standalone     # or: tls, cluster, cluster-replicas
    backends/redis/start tls
    backends/redis-cluster/start

From Python (what the pytest fixtures do)::

    from backends.redis.servers import start_standalone

    with start_standalone() as server:
        print(server.url)        # redis://127.0.0.1:41234/0
        server.kill()            # SIGKILL, for fault tests
        server.restart()         # same port, same settings

    with start_cluster(masters=3, replicas=1, node_timeout=500) as cluster:
        moved = cluster.master_slots(cluster.masters()[0])[:100]
        cluster.migrate_slots(moved, cluster.masters()[1], while_migrating=lambda s: time.sleep(1))
        promoted, at = cluster.kill_master(cluster.masters()[0])   # hard failover

``start_*`` raise :class:`ServerMissing` when ``redis-server``/``redis-cli`` are not installed
(Debian: ``apt-get install redis-server``).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
STANDALONE_CONF = HERE / "elasticache.conf"
CLUSTER_CONF = HERE.parent / "redis-cluster" / "cluster.conf"
#: Credentials of the TLS+AUTH server: the AUTH token of the default user and an ACL user.
AUTH_TOKEN = "token-for-tests-0123456789"
ACL_USER, ACL_PASSWORD = "llmcache", "acl-password-for-tests"
#: Cluster bus port = port + 10000, so cluster ports must stay below 65535 - 10000.
MAX_CLUSTER_PORT = 55535
START_TIMEOUT = 10.0  # seconds for a server to accept connections / a cluster to reach ok
TOPOLOGY_TIMEOUT = 20.0  # seconds for a topology change (failover, slot moves) to settle
#: cluster-node-timeout (ms) of clusters with replicas: a dead master is promoted away in ~1-2 s.
FAST_FAILOVER_NODE_TIMEOUT = 500

_running: list[Server | Cluster] = []


class ServerMissing(RuntimeError):
    """redis-server or redis-cli is not installed."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServerMissing(f"{name} is not installed (Debian: apt-get install redis-server)")
    return path


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """A free loopback port (and, for a cluster node, its bus port + 10000 free too)."""
    for _ in range(200):
        port = random.randint(20000, MAX_CLUSTER_PORT if cluster else 60000)
        if port != 6379 and _port_free(port) and (not cluster or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free loopback port found")


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    # Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL,
    # so an aborted test session leaves no servers behind.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Server:
    """One redis-server process; ``restart`` brings it back on the same port and settings."""

    port: int
    args: list[str]
    workdir: Path
    url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    tls: bool = False
    owns_workdir: bool = True
    _log: Path = field(init=False)

    def start(self) -> Self:
        # A server that exits at once is started again (seen rarely on a loaded CI machine, right
        # after a kill on the same port); one that never accepts within START_TIMEOUT is an error.
        for _ in range(3):
            if self._spawn():
                if self not in _running:
                    _running.append(self)
                return self
        log = self._log.read_text() if self._log.exists() else "(no log)"
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log[-2000:]}")

    def _spawn(self) -> bool:
        self._log = self.workdir / f"redis-{self.port}.log"
        cmd = [_binary("redis-server"), *self.args]
        cmd += ["--dir", str(self.workdir), "--logfile", str(self._log)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_set_pdeathsig
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._accepts():
            if self.proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                return False
            time.sleep(0.02)
        return True

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the server (as a crash or a failover would), keeping its settings."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> Self:
        """Start the server again on the same port (after :meth:`kill`)."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Terminate the server and remove its temp dir. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _running:
            _running.remove(self)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Failover:
    """What :meth:`Cluster.failover` / :meth:`Cluster.kill_master` did, with monotonic times."""

    node: Server  # the replica now master
    started: float  # CLUSTER FAILOVER sent / SIGKILL sent
    promoted: float  # the replica first said it is a master (ROLE), polled every 10 ms
    settled: float  # every live node names it as the owner of its slots


@dataclass
class Cluster:
    """Cluster-enabled nodes owning all 16384 slots; masters, and replicas when started with them.

    Topology operations (each bounded by :data:`TOPOLOGY_TIMEOUT`, raising ``TimeoutError``):
    :meth:`migrate_slots`, :meth:`scale_out`, :meth:`scale_in`, :meth:`failover`,
    :meth:`kill_master`; :meth:`wait_stable` waits until every live node agrees on the slot map.
    They use redis-py (the ``redis`` extra) to talk to the nodes.
    """

    nodes: list[Server]
    workdir: Path
    url: str = ""
    #: Extra redis-server arguments of every node (cluster-node-timeout), reused by scale_out.
    node_args: list[str] = field(default_factory=list)
    _ids: dict[int, str] = field(default_factory=dict, repr=False)
    _conns: dict[int, Any] = field(default_factory=dict, repr=False)

    def stop(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()
        for node in self.nodes:
            node.stop()
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- looking at the topology ----------------------------------------------------------------
    def call(self, node: Server, *args: Any) -> Any:
        """One command on ``node`` (redis-py, replies decoded, 5 s timeouts)."""
        conn = self._conns.get(node.port)
        if conn is None:
            import redis

            conn = redis.Redis(
                host="127.0.0.1",
                port=node.port,
                socket_timeout=5,
                socket_connect_timeout=2,
                decode_responses=True,
            )
            self._conns[node.port] = conn
        return conn.execute_command(*args)

    def live(self) -> list[Server]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def node_id(self, node: Server) -> str:
        if node.port not in self._ids:
            self._ids[node.port] = self.call(node, "CLUSTER", "MYID")
        return self._ids[node.port]

    def role(self, node: Server) -> str:
        """``master`` or ``slave``, as the node itself says (``ROLE``)."""
        return str(self.call(node, "ROLE")[0])

    def masters(self) -> list[Server]:
        """The live masters (with or without slots), in :attr:`nodes` order."""
        return [n for n in self.live() if self.role(n) == "master"]

    def replicas_of(self, master: Server) -> list[Server]:
        """The live replicas that replicate ``master``."""
        found = []
        for node in self.live():
            role = self.call(node, "ROLE")
            if role[0] == "slave" and int(role[2]) == master.port:
                found.append(node)
        return found

    def slot_map(self, via: Server | None = None) -> dict[int, int]:
        """Slot -> port of its master, as ``via`` (a live master by default) sees it."""
        via = via or self.masters()[0]
        owners: dict[int, int] = {}
        for start, end, master, *_ in self.call(via, "CLUSTER", "SLOTS"):
            for slot in range(int(start), int(end) + 1):
                owners[slot] = int(master[1])
        return owners

    def linked_replicas(self) -> list[Server]:
        """The live replicas whose link to their master is up (initial sync done)."""
        linked = []
        for node in self.live():
            with contextlib.suppress(Exception):
                info = self.call(node, "INFO", "replication")  # parsed into a dict
                if info["role"] == "slave" and info.get("master_link_status") == "up":
                    linked.append(node)
        return linked

    def master_slots(self, master: Server) -> list[int]:
        """The slots ``master`` owns, by its own account."""
        for line in self.call(master, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "myself" in fields[2]:
                return _slots(fields[8:])
        return []

    def _view(self, node: Server) -> tuple[tuple[int, int, int], ...]:
        slots = self.call(node, "CLUSTER", "SLOTS")
        return tuple(sorted((int(s), int(e), int(m[1])) for s, e, m, *_ in slots))

    def stable(self) -> bool:
        """Every live node says ``cluster_state:ok``, agrees on who owns which slot (all
        16384 covered), has no slot importing/migrating, and every replica's link is up."""
        try:
            nodes = self.live()
            views = set()
            for node in nodes:
                if "cluster_state:ok" not in self.call(node, "CLUSTER", "INFO"):
                    return False
                if "[" in self.call(node, "CLUSTER", "NODES"):  # [slot->-id] / [slot-<-id]
                    return False
                views.add(self._view(node))
                info = self.call(node, "INFO", "replication")  # parsed into a dict
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        except Exception:  # a node mid-change (or just killed): not stable yet
            return False
        if len(views) != 1:
            return False
        (view,) = views
        return sum(e - s + 1 for s, e, _ in view) == 16384

    def wait_stable(self, timeout: float = TOPOLOGY_TIMEOUT) -> None:
        _wait(self.stable, timeout, "the cluster did not settle (state ok, one slot map)")

    # -- changing it ----------------------------------------------------------------------------
    def migrate_slots(
        self,
        slots: list[int],
        dest: Server,
        *,
        batch: int = 100,
        while_migrating: Callable[[list[int]], object] | None = None,
    ) -> None:
        """Move ``slots`` (from whichever masters own them) to the master ``dest``, as
        ``redis-cli --cluster reshard`` does: ``SETSLOT IMPORTING`` on ``dest``, ``SETSLOT
        MIGRATING`` on the owner, ``MIGRATE`` of the keys in batches of ``batch``, then
        ``SETSLOT NODE`` on ``dest``, the owner and every other master.

        ``while_migrating(slots)`` runs once every key has moved but the slots are still
        migrating: hold it (sleep) and clients get ASK for every key of those slots.
        """
        owners = self.slot_map()
        by_port = {n.port: n for n in self.live()}
        dest_id = self.node_id(dest)
        sources: dict[int, list[int]] = {}
        for slot in slots:
            if owners[slot] != dest.port:
                sources.setdefault(owners[slot], []).append(slot)
        for port, moving in sources.items():
            source = by_port[port]
            source_id = self.node_id(source)
            self._each(dest, [("CLUSTER", "SETSLOT", s, "IMPORTING", source_id) for s in moving])
            self._each(source, [("CLUSTER", "SETSLOT", s, "MIGRATING", dest_id) for s in moving])
            self._drain(source, dest, moving, batch)
        if while_migrating is not None:
            while_migrating(slots)
        for port, moving in sources.items():
            source = by_port[port]
            self._drain(source, dest, moving, batch)  # keys written to the source meanwhile
            others = [m for m in self.masters() if m.port not in (dest.port, port)]
            for node in [dest, source, *others]:
                try:
                    self._each(node, [("CLUSTER", "SETSLOT", s, "NODE", dest_id) for s in moving])
                except Exception as exc:
                    # A master that lost its last slot may already have turned into a replica
                    # of ``dest`` (Redis 7, cluster-allow-replica-migration): it knows.
                    if node is dest or "only with masters" not in str(exc):
                        raise

    def _each(self, node: Server, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run ``commands`` on ``node`` in one pipeline (no MULTI); raise the first error."""
        self.call(node, "PING")  # creates the connection
        pipe = self._conns[node.port].pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())

    def _drain(self, source: Server, dest: Server, slots: list[int], batch: int) -> None:
        deadline = time.monotonic() + TOPOLOGY_TIMEOUT
        pending = list(slots)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"keys of {len(pending)} slots did not migrate")
            found = self._each(source, [("CLUSTER", "GETKEYSINSLOT", s, batch) for s in pending])
            pending = [s for s, keys in zip(pending, found, strict=True) if keys]
            for keys in (k for k in found if k):
                self.call(source, "MIGRATE", "127.0.0.1", dest.port, "", 0, 5000, "KEYS", *keys)

    def _new_node(self) -> Server:
        port = free_port(cluster=True)
        nodedir = self.workdir / str(port)
        nodedir.mkdir()
        args = [str(CLUSTER_CONF), "--port", str(port), *self.node_args]
        args += ["--cluster-config-file", str(nodedir / "nodes.conf")]
        node = Server(port, args, nodedir, owns_workdir=False).start()
        self.nodes.append(node)
        return node

    def scale_out(self, *, while_migrating: Callable[[list[int]], object] | None = None) -> Server:
        """Add an empty master, then move to it an equal share of every master's slots."""
        masters = [m for m in self.masters() if self.master_slots(m)]
        node = self._new_node()
        self.call(node, "CLUSTER", "MEET", "127.0.0.1", masters[0].port)
        node_id = self.node_id(node)

        def known() -> bool:
            # Everyone knows it, and it knows the slot map (or MIGRATE to it is CLUSTERDOWN).
            views = [self.call(n, "CLUSTER", "NODES") for n in self.live()]
            return all(f"{node_id} " in v and "handshake" not in v for v in views) and (
                "cluster_state:ok" in self.call(node, "CLUSTER", "INFO")
            )

        _wait(known, TOPOLOGY_TIMEOUT, f"the new node {node.port} did not join")
        share: list[int] = []
        for master in masters:
            owned = self.master_slots(master)
            share += owned[len(owned) - len(owned) // (len(masters) + 1) :]
        self.migrate_slots(share, node, while_migrating=while_migrating)
        self.wait_stable()
        return node

    def scale_in(
        self, node: Server, *, while_migrating: Callable[[list[int]], object] | None = None
    ) -> None:
        """Move ``node``'s slots to the other masters (equal parts), make every other node
        ``CLUSTER FORGET`` it (and its replicas), and stop them."""
        leaving = [node, *self.replicas_of(node)]
        others = [m for m in self.masters() if m is not node]
        slots = self.master_slots(node)
        part = -(-len(slots) // len(others))
        for i, master in enumerate(others):
            if chunk := slots[i * part : (i + 1) * part]:
                self.migrate_slots(chunk, master, while_migrating=while_migrating)
        _wait(lambda: not self.master_slots(node), TOPOLOGY_TIMEOUT, "slots did not move")
        ids = [self.node_id(n) for n in leaving]
        for remaining in self.live():
            if remaining not in leaving:
                for node_id in ids:
                    self.call(remaining, "CLUSTER", "FORGET", node_id)
        for gone in leaving:
            gone.stop()
            self.nodes.remove(gone)
            conn = self._conns.pop(gone.port, None)
            if conn is not None:
                conn.close()
        self.wait_stable()

    def failover(self, master: Server) -> Failover:
        """Graceful failover: ``CLUSTER FAILOVER`` on a replica of ``master`` (no write lost)."""
        replica = self.replicas_of(master)[0]
        started = time.monotonic()
        self.call(replica, "CLUSTER", "FAILOVER")
        return self._promotion(replica, started)

    def kill_master(self, master: Server) -> Failover:
        """Hard failover: SIGKILL ``master``; its replica is promoted after the node timeout.
        The killed node stays in :attr:`nodes` (``restart()`` brings it back as a replica)."""
        replica = self.replicas_of(master)[0]
        started = time.monotonic()
        master.kill()
        conn = self._conns.pop(master.port, None)
        if conn is not None:
            conn.close()
        return self._promotion(replica, started)

    def _promotion(self, replica: Server, started: float) -> Failover:
        def promoted() -> bool:
            with contextlib.suppress(Exception):
                return self.role(replica) == "master"
            return False

        _wait(promoted, TOPOLOGY_TIMEOUT, f"replica {replica.port} was not promoted", step=0.01)
        at = time.monotonic()

        def everyone_knows() -> bool:
            with contextlib.suppress(Exception):
                return all(replica.port in self.slot_map(n).values() for n in self.masters())
            return False

        _wait(everyone_knows, TOPOLOGY_TIMEOUT, f"the cluster did not adopt {replica.port}")
        return Failover(replica, started, at, time.monotonic())


def _slots(fields: list[str]) -> list[int]:
    """Slots of ``CLUSTER NODES`` slot fields (``0-5460``, ``7``; not ``[7->-id]``)."""
    slots: list[int] = []
    for spec in fields:
        if spec.startswith("["):
            continue
        start, _, end = spec.partition("-")
        slots.extend(range(int(start), int(end or start) + 1))
    return slots


def _wait(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(step)


def _workdir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"llmcache-redis-{kind}-"))


def start_standalone(port: int | None = None) -> Server:
    """A plain node (``redis://``) shaped like ElastiCache with cluster mode disabled."""
    _binary("redis-server")
    port = port or free_port()
    server = Server(port, [str(STANDALONE_CONF), "--port", str(port)], _workdir("standalone"))
    server.url = f"redis://127.0.0.1:{port}/0"
    return server.start()


def start_tls(port: int | None = None) -> Server:
    """A TLS-only node with an AUTH token and an ACL user (in-transit encryption + RBAC).

    ``server.url`` logs in as the ACL user and trusts the generated CA; ``server.workdir`` holds
    ``ca.crt``, ``server.crt``/``server.key`` and ``client.crt``/``client.key``.
    """
    _binary("redis-server")
    port = port or free_port()
    workdir = _workdir("tls")
    certs = write_certificates(workdir)
    args = [str(STANDALONE_CONF), "--port", "0", "--tls-port", str(port)]
    args += [
        "--tls-cert-file",
        str(certs["server.crt"]),
        "--tls-key-file",
        str(certs["server.key"]),
    ]
    args += ["--tls-ca-cert-file", str(certs["ca.crt"]), "--tls-auth-clients", "optional"]
    args += ["--requirepass", AUTH_TOKEN]
    args += ["--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all"]
    server = Server(port, args, workdir, tls=True)
    server.url = (
        f"rediss://{ACL_USER}:{quote(ACL_PASSWORD, safe='')}@127.0.0.1:{port}/0"
        f"?ssl_ca_certs={quote(str(certs['ca.crt']))}"
    )
    return server.start()


def start_cluster(
    masters: int = 3, replicas: int = 0, *, node_timeout: int | None = None
) -> Cluster:
    """``masters`` cluster-enabled nodes (and ``replicas`` replicas of each) joined by
    ``redis-cli --cluster create``, state ok, every replica's link up.

    ``node_timeout`` (ms) overrides ``cluster-node-timeout`` (2000 in ``cluster.conf``);
    :func:`start_replicated_cluster` uses a short one so a killed master fails over fast.
    """
    _binary("redis-server")
    cli = _binary("redis-cli")
    workdir = _workdir("cluster")
    nodes: list[Server] = []
    extra = [] if node_timeout is None else ["--cluster-node-timeout", str(node_timeout)]
    if replicas:  # a replica syncs at once, not after the default 5 s wait for more replicas
        extra += ["--repl-diskless-sync-delay", "0"]
    cluster = Cluster(nodes, workdir, node_args=extra)
    _running.append(cluster)
    total = masters * (1 + replicas)
    try:
        for _ in range(total):
            port = free_port(cluster=True)
            nodedir = workdir / str(port)
            nodedir.mkdir()
            args = [str(CLUSTER_CONF), "--port", str(port), *extra]
            args += ["--cluster-config-file", str(nodedir / "nodes.conf")]
            nodes.append(Server(port, args, nodedir, owns_workdir=False).start())
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        create = [cli, "--cluster", "create", *addresses]
        subprocess.run(
            [*create, "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not all(_cluster_ok(cli, n.port, total) for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster on {addresses} did not reach cluster_state:ok")
            time.sleep(0.05)
        if replicas:  # every replica linked and synced: a failover loses nothing
            _wait(
                lambda: len(cluster.linked_replicas()) == masters * replicas and cluster.stable(),
                START_TIMEOUT,
                f"the replicas of {addresses} did not sync",
            )
    except BaseException:
        cluster.stop()
        raise
    # redis-cli makes the first ``masters`` addresses the masters.
    cluster.url = "redis+cluster://" + ",".join(addresses[:masters])
    return cluster


def start_replicated_cluster(masters: int = 3) -> Cluster:
    """``masters`` masters with one replica each, ``cluster-node-timeout`` 500 ms: a killed
    master's replica is promoted within ~1-2 s (ElastiCache cluster mode with replicas)."""
    return start_cluster(masters, 1, node_timeout=FAST_FAILOVER_NODE_TIMEOUT)


def _cluster_ok(cli: str, port: int, nodes: int) -> bool:
    out = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
    ).stdout
    # Every node must know every node, or a client may be sent to a node that still MOVEs.
    return "cluster_state:ok" in out and f"cluster_known_nodes:{nodes}" in out


def write_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate (127.0.0.1, ::1, localhost) and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(
        cn: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        issue("llmcache test CA", ca_key, name("llmcache test CA"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca.crt": directory / "ca.crt"}
    paths["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    sans.append(x509.IPAddress(ipaddress.ip_address("::1")))
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = issue(f"llmcache test {role}", key, ca.subject, ca_key)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if role == "server":
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[f"{role}.crt"] = directory / f"{role}.crt"
        paths[f"{role}.key"] = directory / f"{role}.key"
        paths[f"{role}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}.key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(paths[f"{role}.key"], 0o600)
    return paths


@atexit.register
def stop_all() -> None:
    """Stop every server this process started (also runs at interpreter exit)."""
    for server in list(_running):
        server.stop()


@contextlib.contextmanager
def running(kind: str) -> Iterator[Server | Cluster]:
    """Start a server of ``kind`` (standalone, tls, cluster, cluster-replicas) for a ``with``."""
    starters = {
        "standalone": start_standalone,
        "tls": start_tls,
        "cluster": start_cluster,
        "cluster-replicas": start_replicated_cluster,
    }
    server = starters[kind]()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "standalone"
    if kind not in ("standalone", "tls", "cluster", "cluster-replicas"):
        print("usage: servers.py [standalone|tls|cluster|cluster-replicas]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with running(kind) as server:
            print(server.url, flush=True)
            if isinstance(server, Server) and server.tls:
                print(f"# certificates in {server.workdir}; AUTH token: {AUTH_TOKEN}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except ServerMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
