"""catch/finally_ beside the dead-letter queue: a task that fails for good is dead-lettered
*and* its catch fires; a replay from the queue is a new execution whose callbacks fire again.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.deadletter import DeadLetterQueue
from tests.canvas.recording import Calls, Recorders
from tests.harness import in_process_worker, unique, wait_for


def _dlq_app(make_app: Callable[..., Celery], calls: Calls) -> tuple[Celery, Recorders, DeadLetterQueue]:
    dead = unique("dead")
    app = make_app(jobs_dead_letter_queue=dead)
    app._test_queues = [dead]  # type: ignore[attr-defined]
    return app, Recorders(app, calls), DeadLetterQueue(app)


def test_task_failing_for_good_is_dead_lettered_and_caught_and_its_replay_fires_again(
    make_app: Callable[..., Celery], calls: Calls
) -> None:
    app, rec, dlq = _dlq_app(make_app, calls)
    broken = {"yes": True}

    @app.task(base=GuardedTask, shared=False)
    def fragile() -> str:
        if broken["yes"]:
            raise RuntimeError("dependency down")
        return "recovered"

    with in_process_worker(app):
        result = (
            fragile.s()
            .then(rec.record.s("then"))
            .catch(rec.record.s("catch"))
            .finally_(rec.record.s("finally"))
            .push()
        )
        [error] = calls.wait("catch")
        calls.wait("finally")
        [entry] = wait_for(lambda: dlq.list(), timeout=20, message="the dead-letter entry")
        broken["yes"] = False
        assert dlq.replay(task_id=result.id) == [result.id]
        calls.wait("then")
        calls.wait("finally", 2)
        rec.settle()
    assert entry["task_id"] == error["task_id"] == result.id
    assert calls.of("then") == ["recovered"]
    assert len(calls.of("catch")) == 1
    assert [outcome["state"] for outcome in calls.of("finally")] == ["FAILURE", "SUCCESS"]


def test_replayed_chain_step_runs_the_rest_and_fires_the_chain_finally_again(
    make_app: Callable[..., Celery], calls: Calls
) -> None:
    app, rec, dlq = _dlq_app(make_app, calls)
    broken = {"yes": True}

    @app.task(base=GuardedTask, shared=False)
    def step(previous: list[int], index: int) -> list[int]:
        calls.add("ran", index, None)
        if index == 1 and broken["yes"]:
            raise RuntimeError("step 1 failed")
        return [*previous, index]

    pipeline = (
        step.s([], 0)
        .chain([step.s(1), step.s(2)])
        .then(rec.record.s("then"))
        .catch(rec.record.s("catch"))
        .finally_(rec.record.s("finally"))
    )
    with in_process_worker(app):
        last = pipeline.push()
        [error] = calls.wait("catch")
        calls.wait("finally")
        wait_for(lambda: dlq.list(), timeout=20, message="the dead-letter entry")
        broken["yes"] = False
        assert dlq.replay(task_id=error["task_id"]) == [last.parent.id]
        assert calls.wait("then") == [[0, 1, 2]]
        calls.wait("finally", 2)
        rec.settle()
    assert calls.of("ran") == [0, 1, 1, 2]
    assert len(calls.of("catch")) == 1
    failure, success = calls.of("finally")
    assert failure["state"] == "FAILURE" and failure["task_id"] == last.parent.id
    assert success == {"state": "SUCCESS", "result": [0, 1, 2], "error": None, "task_id": last.id}
