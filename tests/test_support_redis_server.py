"""The test helpers themselves: a real redis-server we can break on purpose, and a clock."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support import ManualClock, RedisServer, RedisServerError
from tests.support import redis_server as redis_server_module

MakeClient = Callable[..., redis.Redis]


def client_for(url: str, *, timeout: float = 2.0) -> redis.Redis:
    # No retries: the tests need to see each failure, not a silent reconnect.
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[redis.Redis] = []

    def make(url: str, *, timeout: float = 2.0) -> redis.Redis:
        client = client_for(url, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def raw_ping(connection: redis.connection.AbstractConnection) -> object:
    # A bare connection, below the client's retry logic, sees the reset as it happens.
    connection.send_command("PING")
    return connection.read_response()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- the shared session server ----------------------------------------------------


def test_session_server_answers_ping(
    redis_server: RedisServer, redis_url: str, make_client: MakeClient
) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.host == "127.0.0.1"
    assert redis_server.password is None
    assert make_client(redis_url).ping() is True


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_url_starts_each_test_empty(redis_url: str, make_client: MakeClient, round_: int) -> None:
    client = make_client(redis_url)
    assert client.dbsize() == 0
    client.set("left-behind", round_)


def test_tests_using_redis_fixtures_are_marked_redis(redis_url: str, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("redis") is not None


def test_other_tests_are_not_marked_redis(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("redis") is None


# --- faults on a server of the test's own -----------------------------------------


def test_fresh_server_is_not_the_session_server(
    redis_server: RedisServer, fresh_redis_server: RedisServer
) -> None:
    assert fresh_redis_server.port != redis_server.port
    assert fresh_redis_server.pid != redis_server.pid


def test_stop_refuses_connections_and_start_reuses_the_port(
    fresh_redis_server: RedisServer, make_client: MakeClient
) -> None:
    server = fresh_redis_server
    port, pid = server.port, server.pid
    assert pid is not None

    server.stop()
    assert not server.running
    assert server.pid is None
    assert not process_exists(pid)
    with pytest.raises(redis.exceptions.ConnectionError):
        make_client(server.url).ping()

    server.start()
    assert server.port == port
    assert make_client(server.url).ping() is True


def test_restart_drops_data_and_keeps_the_port(
    fresh_redis_server: RedisServer, make_client: MakeClient
) -> None:
    server = fresh_redis_server
    port = server.port
    make_client(server.url).set("k", "v")

    server.restart()

    assert server.port == port
    assert make_client(server.url).get("k") is None


def test_pause_times_out_clients_and_resume_recovers(
    fresh_redis_server: RedisServer, make_client: MakeClient
) -> None:
    server = fresh_redis_server
    server.pause()
    assert server.paused
    with pytest.raises(redis.exceptions.TimeoutError):
        make_client(server.url, timeout=0.2).ping()

    server.resume()
    assert not server.paused
    assert make_client(server.url, timeout=0.2).ping() is True


def test_stop_works_on_a_paused_server(fresh_redis_server: RedisServer) -> None:
    fresh_redis_server.pause()
    fresh_redis_server.stop()
    assert not fresh_redis_server.running


def test_kill_clients_resets_open_connections(fresh_redis_server: RedisServer) -> None:
    pool = redis.ConnectionPool.from_url(fresh_redis_server.url, socket_timeout=2.0)
    try:
        connection = pool.get_connection()
        assert raw_ping(connection) in (b"PONG", "PONG", True)

        assert fresh_redis_server.kill_clients() == 1

        with pytest.raises(redis.exceptions.ConnectionError):
            raw_ping(connection)
        pool.release(connection)
    finally:
        pool.disconnect()


def test_flushall_empties_every_database(fresh_redis_server: RedisServer, make_client: MakeClient) -> None:
    db0 = make_client(fresh_redis_server.url)
    db1 = make_client(fresh_redis_server.url.removesuffix("/0") + "/1")
    db0.set("a", 1)
    db1.set("b", 2)

    fresh_redis_server.flushall()

    assert db0.dbsize() == 0
    assert db1.dbsize() == 0


def test_requirepass_rejects_unauthenticated_commands(make_client: MakeClient) -> None:
    with RedisServer(password="s3cret/:@") as server:
        assert server.password == "s3cret/:@"
        assert server.url == f"redis://:s3cret%2F%3A%40@127.0.0.1:{server.port}/0"
        anonymous = make_client(f"redis://127.0.0.1:{server.port}/0")
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.set("k", "v")
        assert make_client(server.url).ping() is True
        # The helper's own admin connection authenticates too.
        server.flushall()
        assert server.kill_clients() >= 1


# --- lifecycle and errors ----------------------------------------------------------


def test_close_ends_the_process_and_removes_the_temp_dir() -> None:
    server = RedisServer().start()
    pid, tmpdir = server.pid, server.tmpdir
    assert pid is not None
    assert tmpdir.is_dir()

    server.close()
    server.close()  # idempotent

    assert not process_exists(pid)
    assert not tmpdir.exists()


def test_start_is_a_no_op_while_running(fresh_redis_server: RedisServer) -> None:
    pid = fresh_redis_server.pid
    fresh_redis_server.start()
    assert fresh_redis_server.pid == pid


def test_port_is_unknown_before_the_first_start() -> None:
    server = RedisServer()
    with pytest.raises(RedisServerError, match="start"):
        _ = server.port
    server.close()


def test_a_taken_port_is_retried_with_a_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = redis_server_module.free_port
        picks = iter([taken])

        def taken_then_free(host: str) -> int:
            return next(picks, None) or real_free_port(host)

        monkeypatch.setattr(redis_server_module, "free_port", taken_then_free)

        with RedisServer() as server:
            assert server.port != taken
            assert server.running


def test_a_taken_fixed_port_fails_after_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = RedisServer(port=taken, startup_timeout=0.3)
        try:
            with pytest.raises(RedisServerError, match="already in use"):
                server.start()
            assert not server.running
        finally:
            server.close()


def test_a_missing_binary_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    server = RedisServer()
    with pytest.raises(RedisServerError, match="redis-server was not found"):
        server.start()
    server.close()


# --- ManualClock -------------------------------------------------------------------


def test_manual_clock_moves_only_when_advanced(manual_clock: ManualClock) -> None:
    assert manual_clock() == 0.0
    assert manual_clock() == 0.0
    assert manual_clock.advance(1.5) == 1.5
    assert manual_clock() == 1.5
    assert manual_clock.now == 1.5
    assert ManualClock(start=100)() == 100.0


def test_manual_clock_refuses_to_go_back(manual_clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        manual_clock.advance(-1)
    assert manual_clock() == 0.0


def test_manual_clock_advances_are_not_lost_across_threads(manual_clock: ManualClock) -> None:
    def bump() -> None:
        for _ in range(1000):
            manual_clock.advance(1)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manual_clock() == 8000.0


def test_a_port_held_by_another_redis_server_is_not_adopted(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs picking the same port: the loser must not mistake the winner for its own.
    real_free_port = redis_server_module.free_port
    picks = iter([redis_server.port])

    def taken_then_free(host: str) -> int:
        return next(picks, None) or real_free_port(host)

    monkeypatch.setattr(redis_server_module, "free_port", taken_then_free)

    with RedisServer() as server:
        assert server.port != redis_server.port
        assert server.pid != redis_server.pid
    assert redis_server.running
