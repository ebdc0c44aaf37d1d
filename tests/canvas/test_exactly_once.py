"""finally_ (and catch) fire exactly once, counted in the shared state, under concurrency.

Each pipeline is published twice with one task id (what a redelivery or a duplicate publish
does), on a worker running eight threads, so both copies race through the adapters at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery

from celery_jobs_ext import GuardedTask, JobChain
from celery_jobs_ext.canvas import guard_key
from celery_jobs_ext.state import get_state
from tests.harness import in_process_worker, wait_for

PIPELINES = 50


def _slot(sig: Any, option: str, task: str) -> str:
    [adapter] = [entry for entry in sig.options[option] if entry["task"] == task]
    return str(adapter["kwargs"]["slot"])


def test_finally_fires_once_per_pipeline_when_fifty_pipelines_run_twice_concurrently(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    state = get_state(app)

    @app.task(base=GuardedTask, shared=False)
    def step(previous: int, pipeline: int, index: int, fail_at: int | None) -> int:
        state.incr(f"ran:{pipeline}:{index}")
        if index == fail_at:
            raise RuntimeError(f"pipeline {pipeline} step {index}")
        return previous + 1

    @app.task(shared=False)
    def count(payload: dict[str, Any], key: str) -> None:
        state.incr(key)

    pipelines: list[tuple[int, int | None, JobChain, str]] = []
    for number in range(PIPELINES):
        fail_at = [None, 0, 1][number % 3]
        sig = (
            step.s(0, number, 0, fail_at)
            .chain([step.s(number, 1, fail_at)])
            .catch(count.s(f"catch:{number}"))
            .finally_(count.s(f"finally:{number}"))
        )
        pipelines.append((number, fail_at, sig, f"{uuid.uuid4()}"))

    with in_process_worker(app, pool="threads", concurrency=8):
        for _, _, sig, last_id in pipelines:
            sig.push(task_id=last_id)
            sig.push(task_id=last_id)
        finally_guards = [
            guard_key("finally", _slot(sig, "link", "jobs.finally"), last_id)
            for _, _, sig, last_id in pipelines
        ]
        catch_guards = [
            guard_key("catch", _slot(sig, "link_error", "jobs.catch"), last_id)
            for _, fail_at, sig, last_id in pipelines
            if fail_at is not None
        ]
        # Every copy has reached the guard: both adapters ran, whatever they decided.
        wait_for(
            lambda: (
                state.get_counters(finally_guards + catch_guards)
                == [2] * (len(finally_guards) + len(catch_guards))
            ),
            timeout=60,
            message="both copies of every pipeline at the guard",
        )
        wait_for(
            lambda: all(state.get_counters([f"finally:{number}" for number in range(PIPELINES)])),
            timeout=30,
            message="every finally_ callback",
        )
        failing = [number for number, fail_at, _, _ in pipelines if fail_at is not None]
        wait_for(
            lambda: all(state.get_counters([f"catch:{number}" for number in failing])),
            timeout=30,
            message="every catch callback",
        )

    for number, fail_at, _, _ in pipelines:
        last_step = 1 if fail_at is None else fail_at
        ran = state.get_counters([f"ran:{number}:{index}" for index in range(last_step + 1)])
        assert ran == [2] * (last_step + 1), f"pipeline {number} did not run twice"
        assert state.get_counters([f"finally:{number}"]) == [1], f"pipeline {number}"
        assert state.get_counters([f"catch:{number}"]) == [0 if fail_at is None else 1], f"pipeline {number}"


def test_one_signature_pushed_many_times_fires_its_finally_once_per_push(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    state = get_state(app)

    @app.task(base=GuardedTask, shared=False)
    def job(number: int) -> int:
        return number

    @app.task(shared=False)
    def count(outcome: dict[str, Any]) -> None:
        state.incr(f"finally:{outcome['task_id']}")

    template = job.s(7).finally_(count.s())
    with in_process_worker(app, pool="threads", concurrency=8):
        ids = [template.push().id for _ in range(PIPELINES)]
        keys = [f"finally:{task_id}" for task_id in ids]
        wait_for(lambda: all(state.get_counters(keys)), timeout=30, message="every push's finally_")
    assert len(set(ids)) == PIPELINES
    assert state.get_counters(keys) == [1] * PIPELINES
