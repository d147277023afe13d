"""A real, throwaway Redis Sentinel set for tests: a primary, a replica, three sentinels.

    sentinels = RedisSentinelSet()          # service "mymaster"; nothing runs yet
    sentinels.start()                       # waits until every sentinel knows everyone
    sentinels.url                           # redis+sentinel://127.0.0.1:S1,...,127.0.0.1:S3/mymaster/0
    sentinels.sentinel_addresses            # [("127.0.0.1", S1), ...]
    sentinels.current_primary()             # the RedisServer the sentinels name primary
    old = sentinels.kill_primary()          # SIGKILL it: a crash
    new = sentinels.wait_failover(old)      # the promoted replica, once sentinels agree
    sentinels.failover()                    # SENTINEL FAILOVER: a graceful switch (~11 s)
    sentinels.close()                       # every process gone, temp dirs removed

The data nodes and the sentinels are :class:`RedisServer` objects; each sentinel runs
``redis-server <its sentinel.conf> --sentinel`` on a free port, its config file (which
the sentinel rewrites) in a temp dir of the set's own. Every wait polls a condition
against a bounded deadline and fails with what it last saw.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from tests.support.redis_server import (
    HOST,
    RedisServer,
    RedisServerError,
)
from tests.support.redis_server import (
    admin_client as _admin,
)
from tests.support.redis_server import (
    raw_command as _command,
)

_POLL = 0.05
# A primary would otherwise wait 5 s for more replicas before a diskless full sync.
_DATA_NODE_ARGS = ("--repl-diskless-sync-delay", "0")


class RedisSentinelError(RedisServerError):
    """The test Sentinel set could not be started, or did not reach the state waited for."""


def _pairs(reply: object) -> dict[str, str]:
    """A flat ``[key, value, key, value, ...]`` reply (or a RESP3 map) as a dict."""
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    assert isinstance(reply, list)
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


class RedisSentinelSet:
    """One primary, one replica and ``sentinels`` sentinels (quorum 2) on 127.0.0.1.

    Usable as a context manager: ``with RedisSentinelSet() as sentinels: ...``.
    """

    host: str = HOST

    def __init__(
        self,
        service: str = "mymaster",
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        *,
        quorum: int = 2,
        startup_timeout: float = 30.0,
    ) -> None:
        if not 1 <= quorum <= sentinels:
            raise ValueError("quorum must be between 1 and the number of sentinels")
        self.service = service
        self.sentinel_count = sentinels
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.startup_timeout = startup_timeout
        self.data_nodes: list[RedisServer] = []  # the first primary, then the first replica
        self.sentinels: list[RedisServer] = []
        self._workdir: Path | None = None

    # -- addresses -----------------------------------------------------------------

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every sentinel."""
        if not self.sentinels:
            raise RedisSentinelError("the sentinel set has no sentinels yet; call start() first")
        return [(server.host, server.port) for server in self.sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/<service>/0``."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def node_at(self, port: int) -> RedisServer:
        for server in self.data_nodes:
            if server.port == port:
                return server
        raise RedisSentinelError(f"no data node of this set listens on port {port}")

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> RedisSentinelSet:
        """Start the primary, its replica and the sentinels; wait until every sentinel
        knows the primary, the replica and the other sentinels, and the replica is in sync.

        A no-op if it runs already. Raises :class:`RedisSentinelError` (and stops what it
        started) if that does not happen within ``startup_timeout`` seconds.
        """
        if self.data_nodes:
            return self
        try:
            primary = RedisServer(extra_args=_DATA_NODE_ARGS)
            self.data_nodes.append(primary)
            primary.start()
            replica = RedisServer(
                extra_args=[*_DATA_NODE_ARGS, "--replicaof", primary.host, str(primary.port)]
            )
            self.data_nodes.append(replica)
            replica.start()
            self._workdir = Path(tempfile.mkdtemp(prefix="otel-cache-sentinel-"))
            for index in range(self.sentinel_count):
                config = self._workdir / f"sentinel-{index}.conf"
                sentinel = RedisServer(config_file=config, sentinel=True)
                config.write_text(self._sentinel_config(primary, sentinel.tmpdir))
                self.sentinels.append(sentinel)
                sentinel.start()
            self._wait(
                "sentinels to know the primary, the replica and each other",
                time.monotonic() + self.startup_timeout,
                lambda: self._settled_problem(primary, [replica]),
            )
        except BaseException:
            self.close()
            raise
        return self

    def _sentinel_config(self, primary: RedisServer, workdir: Path) -> str:
        # The port comes from the command line (RedisServer picks a free one and retries
        # on a clash); the sentinel writes it into this file when it rewrites its config.
        return "\n".join(
            [
                f"bind {self.host}",
                f'dir "{workdir}"',
                "sentinel resolve-hostnames no",
                f"sentinel monitor {self.service} {primary.host} {primary.port} {self.quorum}",
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {self.service} 1",
                "",
            ]
        )

    def close(self) -> None:
        """Kill every process and remove the temp dirs. Safe to call more than once."""
        for server in [*self.sentinels, *self.data_nodes]:
            with contextlib.suppress(Exception):
                server.close()
        self.sentinels = []
        self.data_nodes = []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> RedisSentinelSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = ",".join(str(server.port) for server in self.sentinels)
        return f"<RedisSentinelSet {self.service} sentinels {self.host}:[{ports}]>"

    # -- live state ----------------------------------------------------------------

    def running_sentinels(self) -> list[RedisServer]:
        return [server for server in self.sentinels if server.running and not server.paused]

    def role(self, server: RedisServer) -> str:
        """``"master"`` or ``"slave"``, as the data node reports it now."""
        with _admin(server) as client:
            return str(client.info("replication")["role"])

    def primary_port_per_sentinel(self, sentinel: RedisServer) -> int | None:
        """The primary's port according to one sentinel (None if it names none)."""
        with _admin(sentinel) as client:
            reply = _command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        if not reply:
            return None
        return int(reply[1])

    def current_primary(self) -> RedisServer:
        """The data node the first answering sentinel names as primary."""
        errors: list[str] = []
        for sentinel in self.running_sentinels():
            try:
                port = self.primary_port_per_sentinel(sentinel)
            except redis.RedisError as exc:
                errors.append(f"{sentinel!r}: {exc}")
                continue
            if port is not None:
                return self.node_at(port)
            errors.append(f"{sentinel!r} names no primary")
        raise RedisSentinelError(f"no sentinel named the primary of {self.service}: {'; '.join(errors)}")

    def replicas(self) -> list[RedisServer]:
        """The running data nodes that report themselves replicas now."""
        return [s for s in self.data_nodes if s.running and not s.paused and self.role(s) == "slave"]

    def flushall(self) -> None:
        """FLUSHALL on the current primary (its replica follows)."""
        with _admin(self.current_primary(), timeout=5.0) as client:
            client.flushall()

    # -- faults and waits ------------------------------------------------------------

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary (a crash); returns it, for :meth:`wait_failover`."""
        primary = self.current_primary()
        primary.kill()
        return primary

    def wait_failover(self, old_primary: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until every running sentinel names the same primary other than
        ``old_primary`` and that node answers role master; returns it."""
        found: list[RedisServer] = []

        def problem() -> str | None:
            found.clear()
            ports = {self.primary_port_per_sentinel(s) for s in self.running_sentinels()}
            if len(ports) != 1:
                return f"the sentinels do not agree on the primary yet: ports {sorted(map(str, ports))}"
            (port,) = ports
            if port is None or port == old_primary.port:
                return f"the sentinels still name port {port}"
            server = self.node_at(port)
            role = self.role(server)
            if role != "master":
                return f"{server!r} is named primary but reports role {role}"
            found.append(server)
            return None

        self._wait(f"a failover away from {old_primary!r}", time.monotonic() + timeout, problem)
        return found[0]

    def failover(self, timeout: float = 30.0, *, wait_old_primary: bool = True) -> RedisServer:
        """``SENTINEL FAILOVER``: a graceful switch to the replica. Returns the new primary.

        Waits as :meth:`wait_failover` does (about 1 s here). With ``wait_old_primary``
        (the default) it then waits until the old primary replicates the new one with its
        link up and every sentinel sees it as a healthy replica; the sentinels convert it
        only once it has reported role master for 8 s after the switch, so this adds about
        10 s. Without it the old primary is still a writable master when this returns.
        """
        deadline = time.monotonic() + timeout
        old = self.current_primary()

        def ask() -> str | None:
            sentinel = self.running_sentinels()[0]
            try:
                with _admin(sentinel) as client:
                    _command(client, "SENTINEL", "FAILOVER", self.service)
            except redis.ResponseError as exc:
                # INPROG (another failover runs) or NOGOODSLAVE (the replica not yet seen
                # as fit, e.g. soon after another failover): ask again shortly.
                return f"SENTINEL FAILOVER refused: {exc}"
            return None

        self._wait("SENTINEL FAILOVER to be accepted", deadline, ask)
        new = self.wait_failover(old, timeout=max(0.0, deadline - time.monotonic()))
        if wait_old_primary and old.running:
            self._wait(
                f"{old!r} to replicate the new primary",
                deadline,
                lambda: self._settled_problem(new, [old]),
            )
        return new

    def _settled_problem(self, primary: RedisServer, replicas: list[RedisServer]) -> str | None:
        """Why the set is not settled around ``primary`` and ``replicas``, or None."""
        for replica in replicas:
            with _admin(replica) as client:
                info = client.info("replication")
            if info.get("role") != "slave" or int(info.get("master_port", -1)) != primary.port:
                return f"{replica!r} does not replicate {primary!r} yet"
            if info.get("master_link_status") != "up":
                return f"{replica!r}: master_link_status is {info.get('master_link_status')}"
        want_replicas = {replica.port for replica in replicas}
        for sentinel in self.running_sentinels():
            if self.primary_port_per_sentinel(sentinel) != primary.port:
                return f"{sentinel!r} does not name {primary!r} as primary"
            with _admin(sentinel) as client:
                listed = _command(client, "SENTINEL", "REPLICAS", self.service)
                others = _command(client, "SENTINEL", "SENTINELS", self.service)
            healthy = {
                int(entry["port"])
                for entry in map(_pairs, listed)
                if not {"s_down", "o_down", "disconnected"} & set(entry.get("flags", "").split(","))
            }
            if not want_replicas <= healthy:
                return f"{sentinel!r} knows the replicas {sorted(healthy)}, not {sorted(want_replicas)}"
            known = {int(entry["port"]) for entry in map(_pairs, others)}
            want = {s.port for s in self.running_sentinels() if s is not sentinel}
            if not want <= known:
                return f"{sentinel!r} knows the sentinels {sorted(known)}, not {sorted(want)}"
        return None

    def _wait(self, what: str, deadline: float, problem: Callable[[], str | None]) -> None:
        """Poll ``problem`` (None means done) until the deadline; then raise what it said."""
        last: str | None = "not checked yet"
        while True:
            try:
                last = problem()
            except (redis.RedisError, RedisSentinelError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if last is None:
                return
            if time.monotonic() >= deadline:
                raise RedisSentinelError(f"timed out waiting for the {what}: {last}")
            time.sleep(_POLL)
