"""A worker never dies on what it reads from the shared state.

Overrides and budgets are written here straight into Redis and into SQLite, as a hand edit,
an older version or a bug elsewhere could leave them; a real worker must keep consuming,
at the configured limit, and say so once in its log.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_jobs_ext import GuardedTask, RateLimiter
from celery_jobs_ext.ratelimit import BUDGET_KEY, OVERRIDES_KEY, STARTS_KEY, acquire
from celery_jobs_ext.state import get_state
from tests.harness import in_process_worker, unique

#: Stored overrides no worker can use: infinity (what a 401-digit ``set`` stored), NaN,
#: negative, text, a Unicode digit, a 401-digit number, an empty value.
POISON = ["inf", "nan", "-5", "lots", "²", "1" * 401, "", "1e999"]


def _overrides(queue: str, poison: str) -> dict[str, Any]:
    """``infinity``: the queue's override is what ``set payments 1000…0/s`` stored (the crash of
    issue 21); ``garbage``: text for the queue and every other poison for other queues."""
    if poison == "infinity":
        return {queue: "inf"}
    return {queue: "lots", **{unique("other"): value for value in POISON}, unique("bytes"): b"\xff\xfe1"}


def _poison_redis(app: Celery, url: str, queue: str, poison: str) -> None:
    client = redis.Redis.from_url(url)
    prefix = app.conf.jobs_state_prefix
    client.hset(prefix + OVERRIDES_KEY, mapping=_overrides(queue, poison))
    client.set(prefix + BUDGET_KEY.format(queue=queue), "not a time")
    now = int(client.time()[0])
    for second in range(now - 1, now + 30):  # the start counters of the next seconds
        client.set(f"{prefix}{STARTS_KEY.format(queue=queue)}:{second}", "garbage", ex=120)


def _poison_sqlite(app: Celery, path: Path, queue: str, poison: str) -> None:
    get_state(app).ping()  # creates the schema
    prefix = app.conf.jobs_state_prefix
    with sqlite3.connect(path) as db:
        rows = [(prefix + OVERRIDES_KEY, name, value) for name, value in _overrides(queue, poison).items()]
        rows.append((prefix + OVERRIDES_KEY, 42, 7))  # SQLite keeps whatever type it is given
        db.executemany("INSERT OR REPLACE INTO settings (key, field, value) VALUES (?, ?, ?)", rows)
        db.execute(
            "INSERT OR REPLACE INTO strings (key, value, expires) VALUES (?, ?, ?)",
            (prefix + BUDGET_KEY.format(queue=queue), "not a time", "never"),
        )
        now = int(time.time())
        db.executemany(
            "INSERT OR REPLACE INTO counters (key, value, expires) VALUES (?, ?, ?)",
            [
                (f"{prefix}{STARTS_KEY.format(queue=queue)}:{second}", "garbage", now + 120)
                for second in range(now - 1, now + 30)
            ],
        )


@pytest.mark.parametrize("poison", ["infinity", "garbage"])
@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_worker_keeps_consuming_at_the_configured_limit_over_poisoned_overrides_and_budget(
    backend: str,
    poison: str,
    make_app: Callable[..., Celery],
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = unique("limited")
    settings = {"task_default_queue": queue, "jobs_queue_rate_limits": {queue: "120/m"}}
    if backend == "sqlite":
        settings["jobs_state_url"] = f"sqlite:///{tmp_path / 'state.db'}"
    app = make_app(**settings)
    if backend == "redis":
        _poison_redis(app, redis_url, queue, poison)
    else:
        _poison_sqlite(app, tmp_path / "state.db", queue, poison)

    starts: list[float] = []

    @app.task(base=GuardedTask, shared=False)
    def job() -> None:
        starts.append(time.monotonic())

    caplog.set_level(logging.WARNING, logger="celery_jobs_ext.ratelimit")
    with in_process_worker(app, pool="threads", concurrency=4):
        results = [job.delay() for _ in range(6)]
        for result in results:
            result.get(timeout=60)  # the worker is alive and consuming
        assert job.delay().get(timeout=30) is None  # and still is, after several override reads

    # 120/m with a burst of 1: starts at least half a second apart (a lower bound only).
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(starts))]
    assert len(starts) == 7 and all(gap > 0.45 for gap in gaps), gaps

    # What the operator commands and the health report see: the configured limit.
    assert RateLimiter(app).effective_limit(queue) == (120.0, "config")

    ignored = [r for r in caplog.records if "ignoring the stored override" in r.getMessage()]
    about_queue = [r for r in ignored if repr(queue) in r.getMessage()]
    assert len(about_queue) == 1, [r.getMessage() for r in ignored]  # once per interval, not per read
    assert any("budget of queue" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stored", ["not a time", "inf", "nan", "1e300", "-inf"])
@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_an_unusable_stored_budget_is_replaced_and_reported(
    backend: str, stored: str, make_app: Callable[..., Celery], redis_url: str, tmp_path: Path
) -> None:
    settings = {"jobs_state_url": f"sqlite:///{tmp_path / 'state.db'}"} if backend == "sqlite" else {}
    app = make_app(**settings)
    state = get_state(app)
    key = BUDGET_KEY.format(queue="q")
    if backend == "redis":
        redis.Redis.from_url(redis_url).set(state.prefix + key, stored)
    else:
        state.ping()
        with sqlite3.connect(tmp_path / "state.db") as db:
            db.execute(
                "INSERT OR REPLACE INTO strings (key, value, expires) VALUES (?, ?, ?)",
                (state.prefix + key, stored, None),
            )
    first = acquire(state, key, interval=10.0, burst=1)
    assert first.allowed and first.repaired
    second = acquire(state, key, interval=10.0, burst=1)  # the budget is a real one again
    assert not second.allowed and not second.repaired and 9 < second.retry_after <= 10
