"""Apps with a dead-letter queue, on Redis and on RabbitMQ (shared state on Redis for both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from tests.harness import unique


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The broker URL, once per broker: every dead-letter behaviour must hold on both."""
    if request.param == "redis":
        return redis_url
    return str(request.getfixturevalue("amqp_url"))


@pytest.fixture
def dlq_app(make_app: Callable[..., Celery], broker: str, redis_url: str) -> Callable[..., Celery]:
    """``dlq_app(**settings)``: an app on ``broker`` with its own dead-letter queue.

    Retries wait 0 s (``fixed`` strategy, base 0) so a task's attempts follow each other at once.
    """

    def build(**settings: Any) -> Celery:
        dlq = unique("dlq")
        conf: dict[str, Any] = {
            "jobs_dead_letter_queue": dlq,
            "jobs_state_url": redis_url,
            "jobs_retry_strategy": "fixed",
            "jobs_retry_base": 0,
        }
        conf.update(settings)
        app = make_app(broker=broker, **conf)
        app._test_queues = [dlq]  # type: ignore[attr-defined]
        return app

    return build
