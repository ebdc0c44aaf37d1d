"""Every command gives up on a broker or shared state that accepts connections and never answers.

A local server (started here, on 127.0.0.1) accepts every connection and never reads or
writes. Each command must exit 69 (EX_UNAVAILABLE) within a few seconds, with the URL
shown without its password; the commands run at once, as real ``celery`` subprocesses.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.operator.runner import conf_of, run_celery

SECRET = "hunter2-secret"
#: Far more than the commands need (3 s per connection attempt); main hung forever.
DEADLINE = 25


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


def run_all(commands: list[tuple[dict[str, Any], list[str]]]) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands concurrently (each as a real ``celery``), each within DEADLINE seconds."""
    results: list[Any] = [None] * len(commands)

    def one(index: int) -> None:
        conf, args = commands[index]
        results[index] = run_celery(conf, *args, timeout=DEADLINE)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(commands))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE + 10)
    return results


def assert_unavailable(result: subprocess.CompletedProcess[str] | None, what: str) -> None:
    assert result is not None, f"{what}: hung past {DEADLINE} s"
    output = result.stdout + result.stderr
    assert result.returncode == 69, f"{what}: exit {result.returncode}\n{output}"
    assert SECRET not in output, f"{what}: password shown\n{output}"
    assert "Traceback" not in output, output


DLQ_COMMANDS = [
    ["jobs-dlq", "stats"],
    ["jobs-dlq", "list", "--json"],
    ["jobs-dlq", "replay", "--all"],
    ["jobs-dlq", "purge", "--force"],
]


def test_every_command_gives_up_on_a_silent_broker(
    make_app: Callable[..., Celery], redis_url: str, silent_port: int
) -> None:
    app = make_app(jobs_dead_letter_queue="dlq-silent", jobs_state_url=redis_url)
    brokers = {
        "redis": f"redis://:{SECRET}@127.0.0.1:{silent_port}/0",
        "amqp": f"amqp://guest:{SECRET}@127.0.0.1:{silent_port}//",
    }
    commands = [
        (conf_of(app, broker_url=url), args)
        for url in brokers.values()
        for args in [*DLQ_COMMANDS, ["jobs-health", "--json"]]
    ]
    results = run_all(commands)
    for (conf, args), result in zip(commands, results, strict=True):
        assert_unavailable(result, f"{conf['broker_url'].split(':')[0]} {' '.join(args)}")
        assert result is not None and "127.0.0.1" in result.stderr


def test_every_command_gives_up_on_a_silent_shared_state(
    make_app: Callable[..., Celery], silent_port: int
) -> None:
    app = make_app(jobs_dead_letter_queue="dlq-silent")
    conf = conf_of(app, jobs_state_url=f"redis://:{SECRET}@127.0.0.1:{silent_port}/0")
    commands = [
        (conf, ["jobs-ratelimit", "show"]),
        (conf, ["jobs-ratelimit", "set", "payments", "10/s"]),
        (conf, ["jobs-ratelimit", "unset", "payments"]),
        (conf, ["jobs-health"]),
        (conf, ["jobs-dlq", "stats", "--json"]),
    ]
    for (_, args), result in zip(commands, run_all(commands), strict=True):
        assert_unavailable(result, " ".join(args))
        assert result is not None and "jobs_state_url" in result.stderr


def test_a_locked_sqlite_state_is_unavailable_not_a_hang(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    app = make_app(jobs_state_url=f"sqlite:///{path}")
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("CREATE TABLE IF NOT EXISTS held (x)")
    lock.execute("BEGIN EXCLUSIVE")
    try:
        conf = conf_of(app)
        commands = [(conf, ["jobs-ratelimit", "show"]), (conf, ["jobs-ratelimit", "set", "q", "1"])]
        for (_, args), result in zip(commands, run_all(commands), strict=True):
            assert_unavailable(result, " ".join(args))
            assert result is not None and "locked" in result.stderr
    finally:
        lock.execute("ROLLBACK")
        lock.close()
