"""GuardedTask in a real worker: beside plain tasks, and retrying on the configured strategy."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import celery
import pytest
import redis
from celery import Celery, Task

from celery_jobs_ext import ConfigCache, GuardedTask
from celery_jobs_ext.retry import retry_countdown
from tests.harness import in_process_worker, unique, wait_for


def parked_messages(redis_url: str, queue: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url)
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def countdown_of(message: dict[str, Any], published_after: float) -> float:
    eta = datetime.fromisoformat(message["headers"]["eta"]).timestamp()
    return eta - published_after


def test_guarded_and_plain_tasks_run_side_by_side_in_one_worker(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(base=GuardedTask, shared=False)
    def guarded(x: int) -> int:
        return x * 2

    @app.task(shared=False)
    def plain(x: int) -> int:
        return x + 1

    assert isinstance(guarded, GuardedTask)
    assert not isinstance(plain, GuardedTask) and isinstance(plain, Task)
    with in_process_worker(app):
        results = [guarded.delay(i) for i in range(5)] + [plain.delay(i) for i in range(5)]
        assert [r.get(timeout=20) for r in results] == [0, 2, 4, 6, 8, 1, 2, 3, 4, 5]


def test_task_cls_makes_every_task_guarded(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    app.task_cls = GuardedTask  # what Celery(task_cls=GuardedTask) sets

    @app.task(shared=False)
    def job() -> str:
        return "ok"

    assert isinstance(job, GuardedTask)
    with in_process_worker(app):
        assert job.delay().get(timeout=20) == "ok"


def _retrying_app(
    make_app: Callable[..., Celery], **settings: Any
) -> tuple[Celery, Any, Any, str, list[float]]:
    app = make_app(**settings)
    parking = unique("parking")
    app._test_queues = [parking]  # type: ignore[attr-defined]
    retried_at: list[float] = []

    @app.task(base=GuardedTask, bind=True, max_retries=10, shared=False)
    def flaky(self: Task) -> None:
        retried_at.append(time.time())
        raise self.retry(exc=ValueError("boom"), queue=parking)

    @app.task(bind=True, max_retries=10, shared=False)
    def plain_flaky(self: Task) -> None:
        retried_at.append(time.time())
        raise self.retry(exc=ValueError("boom"), queue=parking)

    return app, flaky, plain_flaky, parking, retried_at


def _parked_countdowns(
    app: Celery, task: Any, parking: str, retried_at: list[float], attempts: list[int], redis_url: str
) -> list[float]:
    """Run one attempt per entry (``retries`` as given) and read the ETA of each retried message."""
    countdowns = []
    with in_process_worker(app):
        for retries in attempts:
            task.apply_async(retries=retries)
            wait_for(lambda: parked_messages(redis_url, parking), timeout=20, message="retried message")
            message = parked_messages(redis_url, parking)[0]
            redis.Redis.from_url(redis_url).delete(parking)
            assert message["headers"]["retries"] == retries + 1
            countdowns.append(countdown_of(message, retried_at[-1]))
    return countdowns


def test_fixed_strategy_waits_the_base_between_retries(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app, flaky, _, parking, retried_at = _retrying_app(
        make_app, jobs_retry_strategy="fixed", jobs_retry_base=30
    )
    for countdown in _parked_countdowns(app, flaky, parking, retried_at, [0, 3], redis_url):
        assert countdown == pytest.approx(30, abs=1.0)


def test_exponential_strategy_grows_by_the_multiplier_up_to_the_cap(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app, flaky, _, parking, retried_at = _retrying_app(
        make_app,
        jobs_retry_strategy="exponential",
        jobs_retry_base=10,
        jobs_retry_multiplier=3.0,
        jobs_retry_max=200,
        jobs_retry_jitter=False,
    )
    countdowns = _parked_countdowns(app, flaky, parking, retried_at, [0, 1, 2, 3], redis_url)
    for measured, expected in zip(countdowns, [10, 30, 90, 200], strict=True):
        assert measured == pytest.approx(expected, abs=1.0)


def test_exponential_jitter_stays_between_zero_and_the_delay(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app, flaky, _, parking, retried_at = _retrying_app(
        make_app, jobs_retry_strategy="exponential", jobs_retry_base=100, jobs_retry_multiplier=2.0
    )
    countdowns = _parked_countdowns(app, flaky, parking, retried_at, [1, 1, 1, 1], redis_url)
    assert all(-1.0 <= c <= 201.0 for c in countdowns)
    assert len({round(c) for c in countdowns}) > 1, "full jitter should vary the delay"


def test_a_countdown_given_by_the_caller_wins(make_app: Callable[..., Celery], redis_url: str) -> None:
    app = make_app(jobs_retry_strategy="fixed", jobs_retry_base=30)
    parking = unique("parking")
    app._test_queues = [parking]  # type: ignore[attr-defined]
    retried_at: list[float] = []

    @app.task(base=GuardedTask, bind=True, shared=False)
    def flaky(self: Task) -> None:
        retried_at.append(time.time())
        raise self.retry(exc=ValueError("boom"), countdown=7, queue=parking)

    [countdown] = _parked_countdowns(app, flaky, parking, retried_at, [0], redis_url)
    assert countdown == pytest.approx(7, abs=1.0)


def test_autoretry_for_uses_the_strategy(make_app: Callable[..., Celery], redis_url: str) -> None:
    app = make_app(jobs_retry_strategy="fixed", jobs_retry_base=45)
    parking = unique("parking")
    app._test_queues = [parking]  # type: ignore[attr-defined]
    retried_at: list[float] = []

    @app.task(base=GuardedTask, autoretry_for=(ValueError,), retry_kwargs={"queue": parking}, shared=False)
    def flaky() -> None:
        retried_at.append(time.time())
        raise ValueError("boom")

    [countdown] = _parked_countdowns(app, flaky, parking, retried_at, [0], redis_url)
    assert countdown == pytest.approx(45, abs=1.0)


def test_a_plain_task_keeps_celerys_own_retry_delay(make_app: Callable[..., Celery], redis_url: str) -> None:
    app, _, plain_flaky, parking, retried_at = _retrying_app(
        make_app, jobs_retry_strategy="fixed", jobs_retry_base=30
    )
    [countdown] = _parked_countdowns(app, plain_flaky, parking, retried_at, [0], redis_url)
    assert countdown == pytest.approx(plain_flaky.default_retry_delay, abs=1.0)


def test_retry_countdown_follows_each_strategy() -> None:
    from celery_jobs_ext import JobsConfig

    none = JobsConfig(retry_strategy="none")
    fixed = JobsConfig(retry_strategy="fixed", retry_base=5)
    exponential = JobsConfig(
        retry_strategy="exponential", retry_base=2, retry_multiplier=2.0, retry_max=20, retry_jitter=False
    )
    assert retry_countdown(none, 3) is None
    assert [retry_countdown(fixed, n) for n in (1, 2, 9)] == [5.0, 5.0, 5.0]
    assert [retry_countdown(exponential, n) for n in (1, 2, 3, 4, 5, 100)] == [2, 4, 8, 16, 20, 20]
    huge = JobsConfig(retry_strategy="exponential", retry_base=1, retry_multiplier=10.0, retry_jitter=False)
    assert retry_countdown(huge, 10_000) == 3600
    ConfigCache.clear()


def test_guarded_task_runs_on_rabbitmq_with_redis_state(
    make_app: Callable[..., Celery], amqp_url: str, redis_url: str
) -> None:
    app = make_app(broker=amqp_url, jobs_state_url=redis_url, jobs_retry_strategy="fixed", jobs_retry_base=1)
    attempts: list[int] = []

    @app.task(base=GuardedTask, bind=True, shared=False, max_retries=3)
    def flaky(self: Task) -> int:
        attempts.append(self.request.retries)
        if self.request.retries < 1:
            raise self.retry(exc=ValueError("once"))
        return len(attempts)

    with in_process_worker(app):
        assert flaky.delay().get(timeout=30) == 2
    assert attempts == [0, 1]


@pytest.mark.skipif(
    tuple(int(part) for part in celery.__version__.split(".")[:2]) < (5, 7),
    reason="Celery 5.7 merges retry(kwargs=...) by run's signature; "
    "before it plain Celery refuses the retry too",
)
def test_an_unbound_guarded_tasks_retry_merges_arguments_as_plain_celery_does(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    """Celery's retry merges new args/kwargs by ``run``'s signature: the wrapper must keep it."""
    app = make_app()
    parking = unique("parking")
    app._test_queues = [parking]  # type: ignore[attr-defined]

    @app.task(shared=False, name=unique("plain_merge"))
    def plain_merge(x: int, y: int = 1) -> None:
        raise plain_merge.retry(kwargs={"x": 101}, countdown=0, queue=parking)

    @app.task(base=GuardedTask, shared=False, name=unique("guarded_merge"))
    def guarded_merge(x: int, y: int = 1) -> None:
        raise guarded_merge.retry(args=(102,), countdown=0, queue=parking)

    @app.task(base=GuardedTask, shared=False, name=unique("guarded_merge_kwargs"))
    def guarded_merge_kwargs(x: int, y: int = 1) -> None:
        raise guarded_merge_kwargs.retry(kwargs={"x": 101}, countdown=0, queue=parking)

    with in_process_worker(app):
        for task in (plain_merge, guarded_merge, guarded_merge_kwargs):
            task.apply_async((1,), {"y": 7})
        wait_for(lambda: len(parked_messages(redis_url, parking)) == 3, timeout=20, message="three retries")
    bodies = {
        message["headers"]["task"]: json.loads(base64.b64decode(message["body"]))[:2]
        for message in parked_messages(redis_url, parking)
    }
    assert bodies[guarded_merge_kwargs.name] == bodies[plain_merge.name]
    assert bodies[guarded_merge.name] == [[102], {"y": 7}]
