"""Throwaway Redis servers shaped like ElastiCache, for tests, CI, demos and benchmarks.

Three shapes, each on free loopback ports (never 6379) with a temp dir removed on stop:

- ``standalone``: one node, ``maxmemory 256mb``, ``maxmemory-policy volatile-lru``, no persistence
  (``backends/redis/elasticache.conf``) — ElastiCache with cluster mode disabled.
- ``tls``: the same node with in-transit encryption and AUTH: TLS only (``port 0``), certificates
  generated at start (a CA, a server certificate for 127.0.0.1/localhost and a client
  certificate), an AUTH token for the default user and an RBAC-style ACL user ``llmcache``.
- ``cluster``: three masters, no replicas (``backends/redis-cluster/cluster.conf``) — cluster mode
  enabled; ports stay <= 55535 because each node also listens on port + 10000 (the cluster bus).

From a shell (prints the URL, stops on Ctrl-C / SIGTERM)::

    python backends/redis/servers.py standalone     # or: tls, cluster
    backends/redis/start tls
    backends/redis-cluster/start

From Python (what the pytest fixtures do)::

    from backends.redis.servers import start_standalone

    with start_standalone() as server:
        print(server.url)        # redis://127.0.0.1:41234/0
        server.kill()            # SIGKILL, for fault tests
        server.restart()         # same port, same settings

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
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
class Cluster:
    """Three (or more) cluster-enabled masters that own all 16384 slots between them."""

    nodes: list[Server]
    workdir: Path
    url: str = ""

    def stop(self) -> None:
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


def start_cluster(masters: int = 3) -> Cluster:
    """``masters`` cluster-enabled nodes joined by ``redis-cli --cluster create``, state ok."""
    _binary("redis-server")
    cli = _binary("redis-cli")
    workdir = _workdir("cluster")
    nodes: list[Server] = []
    cluster = Cluster(nodes, workdir)
    _running.append(cluster)
    try:
        for _ in range(masters):
            port = free_port(cluster=True)
            nodedir = workdir / str(port)
            nodedir.mkdir()
            args = [str(CLUSTER_CONF), "--port", str(port)]
            args += ["--cluster-config-file", str(nodedir / "nodes.conf")]
            nodes.append(Server(port, args, nodedir, owns_workdir=False).start())
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not all(_cluster_ok(cli, n.port, masters) for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster on {addresses} did not reach cluster_state:ok")
            time.sleep(0.05)
    except BaseException:
        cluster.stop()
        raise
    cluster.url = "redis+cluster://" + ",".join(addresses)
    return cluster


def _cluster_ok(cli: str, port: int, masters: int) -> bool:
    out = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
    ).stdout
    # Every node must know every master, or a client may be sent to a node that still MOVEs.
    return "cluster_state:ok" in out and f"cluster_known_nodes:{masters}" in out


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
    """Start a server of ``kind`` (standalone, tls, cluster) for the duration of a ``with``."""
    starters = {"standalone": start_standalone, "tls": start_tls, "cluster": start_cluster}
    server = starters[kind]()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "standalone"
    if kind not in ("standalone", "tls", "cluster"):
        print("usage: servers.py [standalone|tls|cluster]", file=sys.stderr)
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
