"""chain(): steps pass results on; then/catch/finally_ on the chain cover it as a whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, Task

from celery_jobs_ext import GuardedTask
from tests.canvas.recording import Calls, Recorders
from tests.harness import in_process_worker, unique


def _steps_app(canvas_app: tuple[Celery, Recorders], calls: Calls) -> tuple[Celery, Recorders, Any]:
    app, rec = canvas_app

    @app.task(base=GuardedTask, bind=True, shared=False)
    def step(self: Task, previous: list[int], index: int, fail_at: int | None) -> list[int]:
        calls.add("ran", index, None)
        if index == fail_at:
            raise LookupError(f"step {index} failed")
        return [*previous, index]

    return app, rec, step


def _pipeline(step: Any, rec: Recorders, fail_at: int | None) -> Any:
    return (
        step.s([], 0, fail_at)
        .chain([step.s(1, fail_at), step.s(2, fail_at)])
        .then(rec.record.s("then"))
        .catch(rec.record.s("catch"))
        .finally_(rec.record.s("finally"))
    )


def test_chain_passes_results_on_and_then_gets_the_last_result_once(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec, step = _steps_app(canvas_app, calls)
    with in_process_worker(app):
        last = _pipeline(step, rec, None).push()
        assert last.get(timeout=20) == [0, 1, 2]
        calls.wait("then")
        calls.wait("finally")
        rec.settle()
    assert calls.of("ran") == [0, 1, 2]
    assert calls.of("then") == [[0, 1, 2]]
    assert calls.of("finally") == [
        {"state": "SUCCESS", "result": [0, 1, 2], "error": None, "task_id": last.id}
    ]
    assert calls.of("catch") == []


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_chain_failing_at_any_step_stops_there_and_fires_catch_and_finally_once(
    canvas_app: tuple[Celery, Recorders], calls: Calls, fail_at: int
) -> None:
    app, rec, step = _steps_app(canvas_app, calls)
    with in_process_worker(app):
        last = _pipeline(step, rec, fail_at).push()
        ids = [last.parent.parent.id, last.parent.id, last.id]
        [error] = calls.wait("catch")
        [outcome] = calls.wait("finally")
        rec.settle()
    assert calls.of("ran") == list(range(fail_at + 1))
    assert error == {
        "task_id": ids[fail_at],
        "task_name": step.name,
        "exception_type": "LookupError",
        "message": f"step {fail_at} failed",
        "attempts": 1,
        "queue": app.conf.task_default_queue,
    }
    assert outcome == {"state": "FAILURE", "result": None, "error": error, "task_id": ids[fail_at]}
    assert len(calls.of("catch")) == len(calls.of("finally")) == 1
    assert calls.of("then") == []


def test_callbacks_attached_before_chain_stay_on_their_step(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec, step = _steps_app(canvas_app, calls)
    first = step.s([], 0, 2).then(rec.record.s("first-then")).finally_(rec.record.s("first-finally"))
    pipeline = first.chain([step.s(1, 2), step.s(2, 2)]).finally_(rec.record.s("chain-finally"))
    with in_process_worker(app):
        last = pipeline.push()
        [chain_outcome] = calls.wait("chain-finally")
        calls.wait("first-then")
        calls.wait("first-finally")
        rec.settle()
    assert calls.of("first-then") == [[0]]
    assert calls.of("first-finally") == [
        {"state": "SUCCESS", "result": [0], "error": None, "task_id": last.parent.parent.id}
    ]
    assert chain_outcome["state"] == "FAILURE" and chain_outcome["task_id"] == last.id


def test_pipe_operator_and_chain_extension_keep_chain_callbacks_on_the_whole_chain(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec, step = _steps_app(canvas_app, calls)
    head = (step.s([], 0, 2) | step.s(1, 2)).catch(rec.record.s("catch")).finally_(rec.record.s("finally"))
    pipeline = head | step.s(2, 2)
    with in_process_worker(app):
        last = pipeline.push()
        [error] = calls.wait("catch")
        calls.wait("finally")
        rec.settle()
    assert calls.of("ran") == [0, 1, 2]
    assert error["task_id"] == last.id
    assert [outcome["state"] for outcome in calls.of("finally")] == ["FAILURE"]


def test_chain_on_queue_sends_every_step_and_a_chain_callback_can_be_a_chain(
    make_app: Callable[..., Celery], calls: Calls
) -> None:
    app = make_app()
    other = unique("steps")
    app._test_queues = [other]  # type: ignore[attr-defined]
    rec = Recorders(app, calls)

    @app.task(base=GuardedTask, bind=True, shared=False)
    def where(self: Task, previous: list[str]) -> list[str]:
        return [*previous, self.request.delivery_info["routing_key"]]

    callback = where.s().chain([rec.record.s("then")])
    with in_process_worker(app, queues=[app.conf.task_default_queue, other]):
        where.s([]).chain([where.s(), where.s()]).on_queue(other).then(callback).push()
        [result] = calls.wait("then")
    default = app.conf.task_default_queue
    assert result == [other, other, other, default]
