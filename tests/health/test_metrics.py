"""Metrics recording on real in-process workers: the hot-path budget, the off switch, outages."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.metrics import (
    TOTALS_KEY,
    WORKERS_KEY,
    execute_with_metrics,
    record,
    recorder_for,
    split_fields,
)
from celery_jobs_ext.state import Op, execute_with_riders, get_state
from celery_jobs_ext.state.redis import RedisState
from tests.harness import PrivateRedis, in_process_worker, unique, wait_for

FLUSHER = "celery-jobs-ext-metrics"


def totals(app: Celery) -> dict[str, dict[str, float]]:
    return split_fields(get_state(app).hgetall([TOTALS_KEY]))


def test_a_task_costs_at_most_one_round_trip_on_a_limited_queue_and_none_on_an_unlimited_one(
    make_app: Callable[..., Celery], monkeypatch: pytest.MonkeyPatch
) -> None:
    limited, free = unique("limited"), unique("free")
    app = make_app(jobs_queue_rate_limits={limited: 60_000})
    app._test_queues = [limited, free]  # type: ignore[attr-defined]

    @app.task(base=GuardedTask, shared=False, name=unique("noop"), ignore_result=True)
    def noop() -> None:
        return None

    # Count every round trip to this app's shared state, by the thread that makes it. On the
    # class: the worker replaces the process's backend objects when its pool starts.
    prefix = app.conf.jobs_state_prefix
    execute = RedisState.execute
    calls: list[tuple[str, list[str]]] = []

    def counting_execute(self: RedisState, ops: Sequence[Op]) -> list[Any]:
        if self.prefix == prefix:
            # A feature's script by its own name: the rate limiter's decision is "gcra".
            names = [op.args[0].name if op.name == "script" else op.name for op in ops]
            calls.append((threading.current_thread().name, names))
        return execute(self, ops)

    monkeypatch.setattr(RedisState, "execute", counting_execute)

    with in_process_worker(app, pool="solo", queues=[limited, free]):
        consumer_thread = wait_for(
            lambda: next((name for name, ops in calls if ops == ["hgetall_text"]), None),
            message="the worker's first rate-limit refresh",
        )
        for _ in range(20):
            noop.apply_async(queue=limited)
            noop.apply_async(queue=free)
        wait_for(
            lambda: {q: c.get("succeeded") for q, c in totals(app).items()} == {limited: 20, free: 20},
            timeout=20,
            message="40 successes counted",
        )

    on_consumer = [ops for name, ops in calls if name == consumer_thread]
    # The worker's shutdown writes what is left and removes its heartbeat, from this thread too.
    assert set(on_consumer[-1]) <= {"hincr", "put_expiring"}
    on_consumer = on_consumer[:-1]
    decisions = [ops for ops in on_consumer if "gcra" in ops]
    # At most one round trip per task on the limited queue (fewer when slots are taken
    # ahead), carrying metric writes when due...
    assert 1 <= len(decisions) <= 20
    assert all(ops.count("gcra") == 1 and set(ops) <= {"gcra", "hincr"} for ops in decisions)
    # ...and nothing else per task: the other consumer-thread trips are the limiter's periodic refresh.
    assert all(ops == ["hgetall_text"] for ops in on_consumer if "gcra" not in ops)
    # Everything else was written by the flusher, about once a second, never per task.
    assert {name for name, _ in calls} <= {consumer_thread, FLUSHER, "MainThread"}
    assert all(set(ops) <= {"hincr", "put_expiring"} for name, ops in calls if name == FLUSHER)
    lifetime = totals(app)
    assert lifetime[limited]["started"] == lifetime[free]["started"] == 20
    assert lifetime[free]["duration_count"] == 20


def test_jobs_metrics_false_writes_no_counts_and_no_heartbeat(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_metrics=False)

    @app.task(base=GuardedTask, shared=False, name=unique("add"))
    def add(x: int, y: int) -> int:
        return x + y

    with in_process_worker(app, pool="solo"):
        assert [add.delay(i, i).get(timeout=10) for i in range(5)] == [0, 2, 4, 6, 8]
        record(app, app.conf.task_default_queue, "dead_lettered")
    # A stopped worker has flushed everything it had: with metrics on, the counts would be here.
    assert get_state(app).hgetall([TOTALS_KEY]) == [{}]
    assert get_state(app).get_expiring(WORKERS_KEY) == {}
    assert recorder_for(app, create=False) is None


def test_a_run_that_hits_its_time_limit_counts_as_timed_out_and_failed(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    queue = app.conf.task_default_queue

    @app.task(base=GuardedTask, shared=False, name=unique("slow"))
    def slow() -> None:
        raise SoftTimeLimitExceeded("soft time limit (0.1 s) exceeded")

    @app.task(base=GuardedTask, shared=False, name=unique("quick"))
    def quick() -> str:
        return "ok"

    with in_process_worker(app, pool="threads", concurrency=2):
        with pytest.raises(SoftTimeLimitExceeded):
            slow.delay().get(timeout=10)
        assert quick.delay().get(timeout=10) == "ok"
        wait_for(lambda: totals(app).get(queue, {}).get("succeeded") == 1, message="counts flushed")
    counted = totals(app)[queue]
    assert {field: counted.get(field, 0) for field in ("started", "succeeded", "failed", "timed_out")} == {
        "started": 2,
        "succeeded": 1,
        "failed": 1,
        "timed_out": 1,
    }


def test_counts_stay_buffered_while_the_state_is_down_and_are_written_when_it_returns(
    make_app: Callable[..., Celery],
    caplog: pytest.LogCaptureFixture,
    private_redis: Callable[..., PrivateRedis],
) -> None:
    server = private_redis()
    try:
        app = make_app(jobs_state_url=f"{server.url}/0")
        recorder = recorder_for(app)
        assert recorder is not None
        recorder.add("q", {"dead_lettered": 2})
        assert recorder.flush()

        server.halt()
        with caplog.at_level(logging.WARNING, logger="celery_jobs_ext.metrics"):
            recorder.add("q", {"dead_lettered": 3})
            assert not recorder.flush()
            recorder.add("q", {"dead_lettered": 4})
            assert not recorder.flush()
        warnings = [r for r in caplog.records if r.name == "celery_jobs_ext.metrics"]
        assert len(warnings) == 1  # at most one a minute

        server.start()  # an empty server: the 2 written before the outage died with the old one
        wait_for(recorder.flush, timeout=10, interval=0.1, message="a flush after the restart")
        assert totals(app)["q"]["dead_lettered"] == 3 + 4
    finally:
        server.stop()


def test_record_counts_an_event_from_any_process_within_a_second(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    record(app, "orders", "dead_lettered")
    record(app, "orders", "dead_lettered", 2)
    with pytest.raises(ValueError, match="Unknown metric 'exploded'"):
        record(app, "orders", "exploded")
    wait_for(lambda: totals(app).get("orders", {}).get("dead_lettered") == 3, timeout=5)
    recorder = recorder_for(app, create=False)
    assert recorder is not None
    recorder.close()


def test_pending_counts_ride_along_with_a_rate_limit_decision_in_its_round_trip(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    recorder = recorder_for(app)
    assert recorder is not None  # no flusher thread: only the decision below writes
    recorder.add("q", {"started": 1, "succeeded": 1})
    batch = get_state(app).batch().incr("decision")
    assert execute_with_metrics(app, batch) == [1]  # too fresh to ride along yet
    assert totals(app) == {}

    wait_for(lambda: execute_with_riders(app, get_state(app).batch().incr("decision")) and totals(app))
    assert totals(app) == {"q": {"started": 1, "succeeded": 1}}
