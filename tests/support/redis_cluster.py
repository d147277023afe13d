"""A real, throwaway Redis Cluster for tests: primaries with replicas on 127.0.0.1.

    cluster = RedisClusterServers()            # 3 primaries, 1 replica each; nothing runs yet
    cluster.start()                            # 6 redis-servers, CLUSTER CREATE, waits for "ok"
    cluster.url                                # redis+cluster://127.0.0.1:P1,...,127.0.0.1:P3
    cluster.seed_nodes                         # [("127.0.0.1", P1), ...]: the initial primaries
    cluster.primaries() / cluster.replicas()   # current roles, read live
    cluster.primary_for_key("k")               # the RedisServer that holds the key's slot
    cluster.failover(replica)                  # CLUSTER FAILOVER on it: roles swap
    old = cluster.primary_for_key("k")
    cluster.kill(old)                          # SIGKILL: a crashed primary
    new = cluster.wait_promoted(old)           # its replica, once promoted and the cluster ok
    cluster.close()                            # every node gone, temp dirs removed

Each node is a :class:`RedisServer` in its own temp dir (its ``nodes-<port>.conf``
lives there), so a killed node started again rejoins as the same cluster node. The
cluster bus listens on ``port + 10000``, so ports are picked below 55535 with that
port free too. Every wait polls a condition against a bounded deadline and fails with
what it last saw.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import redis

from tests.support.redis_server import (
    HOST,
    RedisServer,
    RedisServerError,
    free_port,
)
from tests.support.redis_server import (
    admin_client as _admin,
)
from tests.support.redis_server import (
    raw_command as _command,
)

SLOTS = 16384
_BUS_OFFSET = 10000
_MAX_PORT = 65535 - _BUS_OFFSET  # the bus port must exist too
_PORT_ATTEMPTS = 5
_POLL = 0.05
# Redis gives up a manual failover that has not completed after this many seconds.
_MANUAL_FAILOVER_TIMEOUT = 6.0


class RedisClusterError(RedisServerError):
    """The test cluster could not be created, or did not reach the state waited for."""


# --- small helpers -----------------------------------------------------------------


def _port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: set[int], host: str = HOST) -> int:
    """A free port below 55535 whose bus port (``port + 10000``) is free as well.

    ``taken`` holds ports already given to other nodes; neither the port nor its bus port
    may clash with those or with their bus ports.
    """
    for _ in range(1000):
        port = free_port(host)
        if port >= _MAX_PORT:
            continue
        clashes = {port, port + _BUS_OFFSET} & (taken | {p + _BUS_OFFSET for p in taken})
        if clashes or not _port_is_free(port + _BUS_OFFSET, host):
            continue
        return port
    raise RedisClusterError("found no free port pair (port, port + 10000) below 55535")


def find_redis_cli() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        raise RedisClusterError(
            "redis-cli was not found on PATH; install it (Debian: apt-get install -y redis-tools)"
        )
    return path


def _info_lines(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None  # for a replica: its primary's id
    connected: bool
    slots: tuple[tuple[int, int], ...]  # inclusive ranges

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool({"fail", "fail?", "handshake", "noaddr"} & self.flags)


def parse_cluster_nodes(text: str) -> list[ClusterNode]:
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0].split(",", 1)[0]
        port_text = address.rsplit(":", 1)[-1]
        slots: list[tuple[int, int]] = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        nodes.append(
            ClusterNode(
                node_id=fields[0],
                port=int(port_text) if port_text.isdigit() else 0,
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                connected=fields[7] == "connected",
                slots=tuple(slots),
            )
        )
    return nodes


# --- the cluster ---------------------------------------------------------------------


class RedisClusterServers:
    """``primaries`` primaries with ``replicas_per_primary`` replicas each, on 127.0.0.1.

    Usable as a context manager: ``with RedisClusterServers() as cluster: ...``.
    """

    host: str = HOST

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1500,
        *,
        startup_timeout: float = 30.0,
    ) -> None:
        if primaries < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 primaries")
        if replicas_per_primary < 0:
            raise ValueError("replicas_per_primary must be >= 0")
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.startup_timeout = startup_timeout
        self.nodes: list[RedisServer] = []
        self._seeds: list[RedisServer] = []
        self._killed_slots: dict[int, tuple[tuple[int, int], ...]] = {}

    # -- addresses -----------------------------------------------------------------

    @property
    def seed_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of the initial primaries (they stay the seeds after failovers)."""
        if not self._seeds:
            raise RedisClusterError("the cluster has no nodes yet; call start() first")
        return [(server.host, server.port) for server in self._seeds]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...``: the seed nodes."""
        return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in self.seed_nodes)

    def node_at(self, port: int) -> RedisServer:
        for server in self.nodes:
            if server.port == port:
                return server
        raise RedisClusterError(f"no node of this cluster listens on port {port}")

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> RedisClusterServers:
        """Start every node, create the cluster and wait until it is healthy.

        A no-op if it runs already. Raises :class:`RedisClusterError` (and stops what it
        started) if the cluster is not ok within ``startup_timeout`` seconds.
        """
        if self.nodes:
            return self
        try:
            total = self.primary_count * (1 + self.replicas_per_primary)
            taken: set[int] = set()
            for _ in range(total):
                server = self._start_node(taken)
                taken.add(server.port)
                self.nodes.append(server)
            self._create()
            self._wait("cluster to form", time.monotonic() + self.startup_timeout, self._formed_problem)
            # redis-cli makes the first nodes given the primaries (one host: no interleaving);
            # read the roles rather than rely on that.
            self._seeds = self.primaries()
            if len(self._seeds) != self.primary_count:
                raise RedisClusterError(f"the new cluster has the primaries {self._seeds}")
        except BaseException:
            self.close()
            raise
        return self

    def _start_node(self, taken: set[int]) -> RedisServer:
        errors: list[str] = []
        for _ in range(_PORT_ATTEMPTS):
            port = free_cluster_port(taken, self.host)
            server = RedisServer(
                port=port,
                startup_timeout=5.0,
                extra_args=[
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    # The healthy shards keep serving while a dead one's replica takes over.
                    "--cluster-require-full-coverage", "no",
                    # A primary would wait 5 s for more replicas before a diskless sync.
                    "--repl-diskless-sync-delay", "0",
                ],
            )  # fmt: skip
            try:
                return server.start()
            except RedisServerError as exc:
                server.close()
                # The port or its bus port was taken after the check (redis exits), or the
                # clash ate the startup time: try a new pair. Anything else is an error.
                if "already in use" not in str(exc) and "did not answer" not in str(exc):
                    raise
                errors.append(f"port {port}: {str(exc).splitlines()[0]}")
        raise RedisClusterError(f"no cluster node started after {_PORT_ATTEMPTS} ports: {'; '.join(errors)}")

    def _create(self) -> None:
        args = [find_redis_cli(), "--cluster", "create"]
        args += [f"{server.host}:{server.port}" for server in self.nodes]
        args += ["--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"]
        try:
            result = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.startup_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RedisClusterError(
                f"redis-cli --cluster create did not finish within {self.startup_timeout:g}s\n"
                f"{exc.stdout!s}{exc.stderr!s}"
            ) from exc
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in result.stdout:
            raise RedisClusterError(
                f"redis-cli --cluster create failed (exit code {result.returncode})\n"
                f"{result.stdout}{result.stderr}"
            )

    def close(self) -> None:
        """Kill every node and remove their temp dirs. Safe to call more than once."""
        for server in self.nodes:
            with contextlib.suppress(Exception):
                server.close()
        self.nodes = []
        self._seeds = []
        self._killed_slots = {}

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = ",".join(str(server.port) for server in self.nodes)
        return f"<RedisClusterServers {self.host}:[{ports}]>"

    # -- live state ----------------------------------------------------------------

    def running_nodes(self) -> list[RedisServer]:
        return [server for server in self.nodes if server.running and not server.paused]

    def role(self, server: RedisServer) -> str:
        """``"master"`` or ``"slave"``, as the node reports it now."""
        with _admin(server) as client:
            return str(client.info("replication")["role"])

    def primaries(self) -> list[RedisServer]:
        """The running nodes that report themselves primaries now."""
        return [server for server in self.running_nodes() if self.role(server) == "master"]

    def replicas(self) -> list[RedisServer]:
        """The running nodes that report themselves replicas now."""
        return [server for server in self.running_nodes() if self.role(server) == "slave"]

    def cluster_nodes(self, server: RedisServer | None = None) -> list[ClusterNode]:
        """``CLUSTER NODES`` as seen by ``server`` (by default the first running node)."""
        server = server or self._any_running()
        with _admin(server) as client:
            return parse_cluster_nodes(str(_command(client, "CLUSTER", "NODES")))

    def cluster_info(self, server: RedisServer) -> dict[str, str]:
        with _admin(server) as client:
            return _info_lines(str(_command(client, "CLUSTER", "INFO")))

    def keyslot(self, key: str) -> int:
        with _admin(self._any_running()) as client:
            return int(_command(client, "CLUSTER", "KEYSLOT", key))

    def primary_for_key(self, key: str) -> RedisServer:
        """The primary that serves ``key``'s slot, per CLUSTER KEYSLOT and CLUSTER NODES."""
        slot = self.keyslot(key)
        for node in self.cluster_nodes():
            if node.is_master and not node.failing and _covers(node.slots, slot):
                return self.node_at(node.port)
        raise RedisClusterError(f"no live primary serves slot {slot} (key {key!r})")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """A running replica that replicates ``primary`` now (per its INFO replication)."""
        for server in self.running_nodes():
            with _admin(server) as client:
                info = client.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", -1)) == primary.port:
                return server
        raise RedisClusterError(f"no running replica replicates {primary!r}")

    def flushall(self) -> None:
        """FLUSHALL on every running primary (replicas follow)."""
        for server in self.primaries():
            with _admin(server, timeout=5.0) as client:
                client.flushall()

    # -- waits ---------------------------------------------------------------------

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running node says ``cluster_state:ok``, sees every other
        running node as connected, and sees every slot served by the same running primary."""
        self._wait("cluster to be healthy", time.monotonic() + timeout, self._health_problem)

    def failover(self, replica: RedisServer, *, force: bool = False, timeout: float = 30.0) -> None:
        """``CLUSTER FAILOVER [FORCE]`` on ``replica``; waits until it reports role master
        and the cluster is healthy again.

        A manual failover that has not happened after 5 s has been given up by redis (its
        own timeout): the command is sent again, until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        if self.role(replica) != "slave":
            raise RedisClusterError(f"{replica!r} is not a replica")
        sent_at = -_MANUAL_FAILOVER_TIMEOUT

        def problem() -> str | None:
            nonlocal sent_at
            role = self.role(replica)
            if role == "slave" and time.monotonic() - sent_at >= _MANUAL_FAILOVER_TIMEOUT:
                with _admin(replica) as client:
                    _command(client, "CLUSTER", "FAILOVER", *(["FORCE"] if force else []))
                sent_at = time.monotonic()
            if role != "master":
                return f"{replica!r} still reports role {role}"
            return self._health_problem()

        self._wait(f"{replica!r} to take over", deadline, problem)

    def kill(self, server: RedisServer) -> None:
        """SIGKILL one node (a crash). Remembers a primary's slots for :meth:`wait_promoted`."""
        with contextlib.suppress(redis.RedisError, RedisClusterError):
            for node in self.cluster_nodes(server):
                if "myself" in node.flags and node.is_master:
                    self._killed_slots[server.port] = node.slots
        server.kill()

    def wait_promoted(self, old_primary: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until a replica has taken over the slots of the killed ``old_primary`` and
        the survivors are healthy; returns the new primary."""
        slots = self._killed_slots.get(old_primary.port)
        if slots is None:
            slots = self._slots_seen_for(old_primary)
        if not slots:
            raise RedisClusterError(f"{old_primary!r} served no slots; nothing to take over")
        promoted: list[RedisServer] = []

        def problem() -> str | None:
            promoted.clear()
            owner = None
            for node in self.cluster_nodes():
                if node.is_master and node.port != old_primary.port and sorted(node.slots) == sorted(slots):
                    owner = node
            if owner is None:
                return f"no other primary serves the slots {slots} of {old_primary!r} yet"
            server = self.node_at(owner.port)
            if not server.running or self.role(server) != "master":
                return f"{server!r} holds the slots but does not report role master"
            health = self._health_problem()
            if health is None:
                promoted.append(server)
            return health

        self._wait(f"a replica of {old_primary!r} to be promoted", time.monotonic() + timeout, problem)
        self._killed_slots.pop(old_primary.port, None)
        return promoted[0]

    def _slots_seen_for(self, server: RedisServer) -> tuple[tuple[int, int], ...]:
        for node in self.cluster_nodes():
            if node.port == server.port and node.is_master:
                return node.slots
        return ()

    def _any_running(self) -> RedisServer:
        running = self.running_nodes()
        if not running:
            raise RedisClusterError("no node of the cluster is running")
        return running[0]

    def _wait(self, what: str, deadline: float, problem: Callable[[], str | None]) -> None:
        """Poll ``problem`` (None means done) until the deadline; then raise what it said."""
        last: str | None = "not checked yet"
        while True:
            try:
                last = problem()
            except (redis.RedisError, RedisClusterError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if last is None:
                return
            if time.monotonic() >= deadline:
                raise RedisClusterError(f"timed out waiting for the {what}: {last}")
            time.sleep(_POLL)

    def _formed_problem(self) -> str | None:
        health = self._health_problem()
        if health is not None:
            return health
        for server in self.nodes:
            with _admin(server) as client:
                info = client.info("replication")
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return f"{server!r}: master_link_status is {info.get('master_link_status')}"
        return None

    def _health_problem(self) -> str | None:
        running = self.running_nodes()
        if not running:
            return "no node is running"
        running_ports = {server.port for server in running}
        views = {}
        for server in running:
            state = self.cluster_info(server).get("cluster_state")
            if state != "ok":
                return f"{server!r}: cluster_state is {state}"
            views[server.port] = self.cluster_nodes(server)
        # What each node says of itself: its role and, for a replica, its primary.
        selves = {
            port: _role_of(node) for port, nodes in views.items() for node in nodes if "myself" in node.flags
        }
        expected: dict[int, int] | None = None
        for port, nodes in views.items():
            for node in nodes:
                if node.port not in running_ports or "myself" in node.flags:
                    continue
                # A manual failover's request travels over the cluster bus, and a primary
                # acts on it only if it knows the sender as its replica: a link not up yet,
                # or gossip not yet heard, drops it silently.
                if node.failing or not node.connected:
                    return f"port {port} has no working bus link to port {node.port} yet"
                if _role_of(node) != selves.get(node.port):
                    return f"port {port} does not know the current role of port {node.port} yet"
            owners = _slot_owners(nodes, running_ports)
            if isinstance(owners, str):
                return f"port {port}: {owners}"
            if expected is None:
                expected = owners
            elif owners != expected:
                return f"port {port} does not agree yet on which primary serves which slot"
        return None


def _role_of(node: ClusterNode) -> tuple[str, str | None]:
    return ("master", None) if node.is_master else ("slave", node.master_id)


def _covers(ranges: tuple[tuple[int, int], ...], slot: int) -> bool:
    return any(low <= slot <= high for low, high in ranges)


def _slot_owners(nodes: list[ClusterNode], running_ports: set[int]) -> dict[int, int] | str:
    """Map each slot range start to the serving primary's port, or say what is wrong."""
    owners: dict[int, int] = {}
    covered = 0
    for node in nodes:
        if not node.is_master or not node.slots:
            continue
        if node.failing or node.port not in running_ports:
            return f"slots {node.slots} are served by a failed or stopped primary (port {node.port})"
        for low, high in node.slots:
            owners[low] = node.port
            covered += high - low + 1
    if covered != SLOTS:
        return f"{covered} of {SLOTS} slots are covered"
    return owners
