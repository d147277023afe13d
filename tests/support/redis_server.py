"""A real, throwaway ``redis-server`` for tests, with handles for fault injection.

    server = RedisServer(password=None)   # nothing runs yet
    server.start()                        # free port on 127.0.0.1, waits for PING
    server.url                            # redis://127.0.0.1:<port>/0
    server.pause() / server.resume()      # SIGSTOP / SIGCONT: a hung server
    server.kill_clients()                 # CLIENT KILL TYPE normal: connection reset
    server.stop() / server.start()        # port refuses connections, then same port again
    server.kill()                         # SIGKILL, a crash; start() again reuses the port
    server.close()                        # stop and remove the temp dir

    RedisServer(extra_args=["--cluster-enabled", "yes"])          # more command-line options
    RedisServer(config_file=path, sentinel=True)                  # a Sentinel: path --sentinel ...

The server keeps no data on disk (``--save "" --appendonly no``) and lives in its own
temp dir. Every running server is also stopped at interpreter exit, and on Linux the
child is killed by the kernel if the test process dies without running ``atexit``
(``PR_SET_PDEATHSIG``), so no run leaves a ``redis-server`` behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"

# How long stop() waits for a clean SIGTERM shutdown before it sends SIGKILL.
_STOP_TIMEOUT = 10.0
# How many fresh ports start() tries when a picked port is taken before redis binds it.
_PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """The test redis-server could not be found, started or driven."""


def free_port(host: str = HOST) -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    Another process may take it before redis binds it; ``RedisServer.start`` retries
    with a new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    """Return the path of the ``redis-server`` binary, or raise ``RedisServerError``."""
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError(
            "redis-server was not found on PATH; install it (Debian: apt-get install -y redis-server)"
        )
    return path


# --- process cleanup -------------------------------------------------------------

_live: set[RedisServer] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process dies.

    atexit does not run when the test process is SIGKILLed (CI timeout, OOM killer);
    without this the server would outlive the run. SIGKILL rather than SIGTERM because
    a paused (SIGSTOPped) server would never act on a SIGTERM. libc is loaded here, in
    the parent, because loading a library between fork and exec is not safe.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


_PREEXEC = _parent_death_hook()


# --- the server ------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, on a port that stays its own.

    The first :meth:`start` picks a free port (or uses ``port`` if given); every later
    start reuses it, so clients built from :attr:`url` reconnect after a restart.
    Usable as a context manager: ``with RedisServer() as server: ...``.

    ``extra_args`` are appended to the command line, after the helper's own options (so
    they win over them). ``config_file`` is passed as the first argument (redis reads it
    before the command-line options) and ``sentinel=True`` adds ``--sentinel`` after it:
    a Sentinel needs a config file it can write to.
    """

    host: str = HOST

    def __init__(
        self,
        *,
        password: str | None = None,
        port: int | None = None,
        startup_timeout: float = 10.0,
        executable: str | None = None,
        extra_args: Sequence[str] = (),
        config_file: str | PathLike[str] | None = None,
        sentinel: bool = False,
    ) -> None:
        if sentinel and config_file is None:
            raise ValueError("a Sentinel needs a config_file it can write to")
        self.password = password
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.config_file = Path(config_file) if config_file is not None else None
        self.sentinel = sentinel
        self.startup_timeout = startup_timeout
        self._executable = executable
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._launches = 0
        self._tmpdir: Path | None = None

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; fixed once the server has first started."""
        if self._port is None:
            raise RedisServerError("the server has no port yet; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while the server runs, else ``None``."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive (paused counts as alive)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def tmpdir(self) -> Path:
        """The server's working directory (holds its log files)."""
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="otel-cache-redis-"))
        return self._tmpdir

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; a no-op if it runs.

        Raises ``RedisServerError`` if the binary is missing or the server does not
        answer within ``startup_timeout`` seconds.
        """
        if self.running:
            return self
        executable = self._executable or find_redis_server()
        if self._port is not None:
            # The port is ours already (a restart, or the caller chose it): a clash is
            # either a previous process still letting go of it or a real conflict, so
            # try the same port again until the deadline.
            self._start_on_fixed_port(executable, self._port)
        else:
            self._start_on_free_port(executable)
        return self

    def _start_on_free_port(self, executable: str) -> None:
        errors: list[str] = []
        for _ in range(_PORT_ATTEMPTS):
            port = free_port(self.host)
            deadline = time.monotonic() + self.startup_timeout
            if self._launch(executable, port, deadline):
                self._port = port
                return
            errors.append(f"port {port}: address already in use")
        raise RedisServerError(
            f"redis-server found no free port after {_PORT_ATTEMPTS} tries: {'; '.join(errors)}"
        )

    def _start_on_fixed_port(self, executable: str, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._launch(executable, port, deadline):
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(
                    f"redis-server could not bind {self.host}:{port} within "
                    f"{self.startup_timeout:g}s: address already in use\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _launch(self, executable: str, port: int, deadline: float) -> bool:
        """Run one redis-server on ``port`` and wait for PING.

        Returns False if the port was taken (so the caller can retry) and raises on any
        other failure.
        """
        self._launches += 1
        log_path = self.tmpdir / f"redis-{self._launches}.log"
        args = [executable]
        if self.config_file is not None:
            args.append(str(self.config_file))
        if self.sentinel:
            args.append("--sentinel")
        args += [
            "--port", str(port),
            "--bind", self.host,
            "--dir", str(self.tmpdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", "",
            "--loglevel", "notice",
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        args += self.extra_args
        with log_path.open("wb") as log:
            # stdout goes to a file, not a pipe: nobody reads a pipe and a full one
            # would block the server.
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                preexec_fn=_PREEXEC,  # only calls prctl; see _parent_death_hook
            )
        self._paused = False
        with _live_lock:
            _live.add(self)
        try:
            self._wait_ready(port, deadline)
        except _PortInUseError:
            self._reap()
            return False
        except BaseException:
            self._kill()
            raise
        return True

    def _wait_ready(self, port: int, deadline: float) -> None:
        """Wait until *our* process answers on ``port``.

        The answer must carry our pid: when two runs pick the same port, the loser's
        PING would otherwise reach the winner's server, and this run would flush it.
        """
        assert self._proc is not None
        last_error: object = "no answer"
        while True:
            if self._proc.poll() is not None:
                log = self._log_tail()
                if "Address already in use" in log:
                    raise _PortInUseError(port)
                raise RedisServerError(
                    f"redis-server exited with code {self._proc.returncode} on port {port}\n{log}"
                )
            try:
                # A short timeout: if something else holds the port and never answers,
                # notice our own process exiting soon rather than after one long read.
                with self._client(port=port, timeout=0.1) as client:
                    pid = client.info("server").get("process_id")
                if pid == self._proc.pid:
                    return
                last_error = f"port {port} is answered by another redis-server (pid {pid})"
            except redis.exceptions.RedisError as exc:  # refused, timed out, not redis, ...
                last_error = exc
            if time.monotonic() >= deadline:
                raise RedisServerError(
                    f"redis-server on port {port} did not answer within "
                    f"{self.startup_timeout:g}s (last error: {last_error!r})\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut the server down (SIGTERM, then SIGKILL after 10 s) and wait for it.

        Afterwards the port refuses connections until :meth:`start` runs again. Works on
        a paused server too.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            # A stopped process only acts on SIGTERM once it runs again.
            proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()

    def restart(self) -> None:
        """Stop, then start again on the same port (all data is lost)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """End the server and remove its temp dir. Safe to call more than once.

        Uses SIGKILL: nothing is kept, and a clean shutdown waits for the server's next
        tick (up to 100 ms), which adds up over a suite of fault tests.
        """
        self._kill()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash, and wait for the process to be gone.

        Nothing is shut down cleanly (no config rewrite, no goodbye to replicas or the
        cluster); the port refuses connections until :meth:`start` runs again on the same
        port. Works on a paused server; a no-op if the server is not running.
        """
        self._kill()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
        self._proc = None
        self._paused = False
        with _live_lock:
            _live.discard(self)

    # -- faults ------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections open but nothing is answered."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def kill_clients(self) -> int:
        """Drop every normal client connection (a reset mid-run); returns how many.

        Uses its own connection, which CLIENT KILL skips.
        """
        with self._client(timeout=5.0) as client:
            killed = client.client_kill_filter(_type="normal", skipme=True)
        assert isinstance(killed, int)
        return killed

    def flushall(self) -> None:
        """Delete every key in every database."""
        with self._client(timeout=5.0) as client:
            client.flushall()

    def _signal(self, signum: signal.Signals) -> None:
        if not self.running or self._proc is None:
            raise RedisServerError(f"cannot send {signum.name}: the server is not running")
        self._proc.send_signal(signum)

    @contextlib.contextmanager
    def _client(self, *, port: int | None = None, timeout: float) -> Iterator[redis.Redis]:
        """A short-lived admin client that never retries (a retry would hide faults)."""
        client = redis.Redis(
            host=self.host,
            port=self.port if port is None else port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            yield client
        finally:
            client.close()

    def _log_tail(self, lines: int = 20) -> str:
        if self._tmpdir is None:
            return ""
        path = self._tmpdir / f"redis-{self._launches}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- context manager ---------------------------------------------------------

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else "stopped"
        return f"<RedisServer {self.host}:{self._port} {state}>"


class _PortInUseError(Exception):
    """Internal: redis-server exited because its port was taken."""


@contextlib.contextmanager
def admin_client(server: RedisServer, timeout: float = 2.0) -> Iterator[redis.Redis]:
    """A short-lived client to one server (a node, a sentinel), decoding replies, never retrying."""
    client = redis.Redis(
        host=server.host,
        port=server.port,
        password=server.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def raw_command(client: redis.Redis, *args: str | int) -> Any:
    """A raw command: the reply unparsed by redis-py's callbacks (typed here once)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]
