"""Pipelines on a real prefork ``celery worker``: time limits, timeouts and concurrency.

A task killed at its hard time limit fails in the worker's parent process (Celery 5.7 runs
its errbacks there), so the adapters must work outside the pool child too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from celery_jobs_ext import JobSignature
from celery_jobs_ext.canvas import guard_key
from celery_jobs_ext.state import StateBackend, get_state
from tests.harness import WorkerProcess, wait_for


@pytest.fixture
def prefork(make_app: Callable[..., Celery], redis_url: str) -> Iterator[tuple[Celery, StateBackend]]:
    """A test-side app and a prefork worker on ``tests.canvas.workerapp`` sharing its queue and state."""
    app = make_app()
    conf = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_default_queue": app.conf.task_default_queue,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "jobs_timeout_grace": 1,
    }
    env = {"JOBS_TEST_CONF": json.dumps(conf)}
    with WorkerProcess(
        env, queues=app.conf.task_default_queue, concurrency=4, app="tests.canvas.workerapp"
    ) as worker:
        worker.wait_ready()
        yield app, get_state(app)


def reported(state: StateBackend, key: str) -> Any:
    """What ``canvas.report`` last received under ``key``, once it has been called."""
    wait_for(lambda: state.get_counters([key])[0], timeout=30, message=f"report {key}")
    return json.loads(state.hgetall_text(f"{key}:payload")["json"])


def _sig(app: Celery, name: str, *args: Any) -> JobSignature:
    return JobSignature(name, args, app=app)


def test_hard_time_limit_kill_and_per_call_timeout_fire_catch_and_finally_once(
    prefork: tuple[Celery, StateBackend],
) -> None:
    app, state = prefork
    killed = (
        _sig(app, "canvas.sleep", 30)
        .set(time_limit=1)
        .catch(_sig(app, "canvas.report", "killed-catch"))
        .finally_(_sig(app, "canvas.report", "killed-finally"))
        .push()
    )
    timed_out = (
        _sig(app, "canvas.sleep", 30)
        .timeout(1)
        .catch(_sig(app, "canvas.report", "timeout-catch"))
        .finally_(_sig(app, "canvas.report", "timeout-finally"))
        .push()
    )
    killed_error = reported(state, "killed-catch")
    killed_outcome = reported(state, "killed-finally")
    timeout_error = reported(state, "timeout-catch")
    timeout_outcome = reported(state, "timeout-finally")
    queue = app.conf.task_default_queue
    assert killed_error == {
        "task_id": killed.id,
        "task_name": "canvas.sleep",
        "exception_type": "billiard.exceptions.TimeLimitExceeded",  # celery.exceptions re-exports it
        "message": "TimeLimitExceeded(1,)",
        "attempts": 1,
        "queue": queue,
    }
    assert killed_outcome == {"state": "FAILURE", "result": None, "error": killed_error, "task_id": killed.id}
    assert timeout_error["task_id"] == timed_out.id
    assert timeout_error["exception_type"] == "celery_jobs_ext.timeouts.JobTimeout"
    assert timeout_outcome["state"] == "FAILURE" and timeout_outcome["error"] == timeout_error
    assert state.get_counters(["killed-catch", "killed-finally", "timeout-catch", "timeout-finally"]) == [
        1,
        1,
        1,
        1,
    ]


def test_finally_fires_once_per_pipeline_on_a_prefork_worker_when_each_runs_twice(
    prefork: tuple[Celery, StateBackend],
) -> None:
    app, state = prefork
    pipelines = []
    for number in range(30):
        fail_at = [None, 0, 1][number % 3]
        sig = (
            _sig(app, "canvas.step", 0, number, 0, fail_at)
            .chain([_sig(app, "canvas.step", number, 1, fail_at)])
            .finally_(_sig(app, "canvas.report", f"finally:{number}"))
        )
        last_id = str(uuid.uuid4())
        sig.push(task_id=last_id)
        sig.push(task_id=last_id)
        slot = next(entry for entry in sig.options["link"] if entry["task"] == "jobs.finally")["kwargs"][
            "slot"
        ]
        pipelines.append((number, fail_at, guard_key("finally", slot, last_id)))
    guards = [guard for _, _, guard in pipelines]
    wait_for(
        lambda: state.get_counters(guards) == [2] * len(guards),
        timeout=60,
        message="both copies at the guard",
    )
    counts = [f"finally:{number}" for number, _, _ in pipelines]
    wait_for(lambda: all(state.get_counters(counts)), timeout=30, message="every finally_ callback")
    assert state.get_counters(counts) == [1] * len(counts)
    for number, fail_at, _ in pipelines:
        last_step = 1 if fail_at is None else fail_at
        ran = state.get_counters([f"ran:{number}:{index}" for index in range(last_step + 1)])
        assert ran == [2] * (last_step + 1), f"pipeline {number}"
