"""then, catch and finally_ on one task, through a real worker on a real Redis broker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, Task

from celery_jobs_ext import GuardedTask, JobSignature
from tests.canvas.recording import Calls, Recorders
from tests.harness import in_process_worker, unique

SECRET = "hunter2-correct-horse"


def test_then_receives_the_result_and_catch_stays_silent_on_success(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    with in_process_worker(app):
        result = add.s(2, 3).then(rec.record.s("then")).catch(rec.record.s("catch")).push()
        assert result.get(timeout=20) == 5
        assert calls.wait("then") == [5]
        rec.settle()
    assert calls.of("then") == [5]
    assert calls.of("catch") == []


def test_immutable_then_callback_gets_its_own_arguments_only(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    with in_process_worker(app):
        add.s(2, 3).then(rec.record.si("no result", "then")).push()
        assert calls.wait("then") == ["no result"]


def test_catch_receives_one_error_description_with_a_masked_message(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def charge(order: str) -> None:
        raise ValueError(f"card declined for {order}; password={SECRET}")

    with in_process_worker(app):
        result = charge.s("order-7").then(rec.record.s("then")).catch(rec.record.s("catch")).push()
        [error] = calls.wait("catch")
        rec.settle()
    assert error == {
        "task_id": result.id,
        "task_name": charge.name,
        "exception_type": "ValueError",
        "message": "card declined for order-7; password=***PASSWORD***",
        "attempts": 1,
        "queue": app.conf.task_default_queue,
    }
    assert calls.of("catch") == [error]
    assert calls.of("then") == []


def test_catch_fires_once_after_the_last_retry_and_never_on_a_retry(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, bind=True, max_retries=2, shared=False)
    def always_fails(self: Task) -> None:
        calls.add("attempt", self.request.retries + 1, None)
        raise self.retry(exc=RuntimeError("still down"), countdown=0.1)

    with in_process_worker(app):
        result = always_fails.s().catch(rec.record.s("catch")).finally_(rec.record.s("finally")).push()
        [error] = calls.wait("catch")
        calls.wait("finally")
        rec.settle()
    assert calls.of("attempt") == [1, 2, 3]
    assert error["attempts"] == 3 and error["task_id"] == result.id
    assert error["exception_type"] == "RuntimeError" and error["message"] == "still down"
    assert len(calls.of("catch")) == 1
    assert [outcome["state"] for outcome in calls.of("finally")] == ["FAILURE"]


def test_task_succeeding_on_its_second_attempt_fires_one_then_one_finally_and_no_catch(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, bind=True, max_retries=3, shared=False)
    def flaky(self: Task) -> str:
        attempt = self.request.retries + 1
        calls.add("attempt", attempt, None)
        if attempt < 2:
            raise self.retry(exc=ConnectionError("blip"), countdown=0.1)
        return f"ok on attempt {attempt}"

    with in_process_worker(app):
        result = (
            flaky.s()
            .then(rec.record.s("then"))
            .catch(rec.record.s("catch"))
            .finally_(rec.record.s("finally"))
            .push()
        )
        assert result.get(timeout=20) == "ok on attempt 2"
        calls.wait("finally")
        calls.wait("then")
        rec.settle()
    assert calls.of("attempt") == [1, 2]
    assert calls.of("then") == ["ok on attempt 2"]
    assert calls.of("finally") == [
        {"state": "SUCCESS", "result": "ok on attempt 2", "error": None, "task_id": result.id}
    ]
    assert calls.of("catch") == []


def test_finally_receives_the_outcome_of_success_and_of_failure(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def divide(x: int, y: int) -> float:
        return x / y

    with in_process_worker(app):
        good = divide.s(6, 3).finally_(rec.record.s("good")).push()
        bad = divide.s(1, 0).always(rec.record.s("bad")).push()
        [success] = calls.wait("good")
        [failure] = calls.wait("bad")
        rec.settle()
    assert success == {"state": "SUCCESS", "result": 2.0, "error": None, "task_id": good.id}
    assert failure == {
        "state": "FAILURE",
        "result": None,
        "error": {
            "task_id": bad.id,
            "task_name": divide.name,
            "exception_type": "ZeroDivisionError",
            "message": "division by zero",
            "attempts": 1,
            "queue": app.conf.task_default_queue,
        },
        "task_id": bad.id,
    }
    assert len(calls.of("good")) == len(calls.of("bad")) == 1


@pytest.mark.parametrize("fails", [False, True], ids=["success", "failure"])
def test_several_callbacks_on_one_signature_all_fire_even_identical_ones(
    canvas_app: tuple[Celery, Recorders], calls: Calls, fails: bool
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def job(fail: bool) -> str:
        if fail:
            raise RuntimeError("no")
        return "yes"

    same = rec.record.s("twice")
    sig = job.s(fails).then(rec.record.s("then-a")).then(rec.record.s("then-b")).then(same).then(same)
    sig.catch(rec.record.s("catch-a")).catch(rec.record.s("catch-b")).catch(same).catch(same)
    sig.finally_(rec.record.s("finally-a")).finally_(rec.record.s("finally-b"))
    with in_process_worker(app):
        sig.push()
        calls.wait("finally-a")
        calls.wait("finally-b")
        calls.wait("twice", 2)
        rec.settle()
    fired = "catch" if fails else "then"
    silent = "then" if fails else "catch"
    assert len(calls.of(f"{fired}-a")) == len(calls.of(f"{fired}-b")) == 1
    assert calls.of(f"{silent}-a") == calls.of(f"{silent}-b") == []
    assert len(calls.of("twice")) == 2
    assert len(calls.of("finally-a")) == len(calls.of("finally-b")) == 1


def test_callbacks_may_be_plain_tasks_on_another_queue_and_parents_plain_tasks(
    make_app: Callable[..., Celery], calls: Calls
) -> None:
    app = make_app()
    other = unique("callbacks")
    app._test_queues = [other]  # type: ignore[attr-defined]
    rec = Recorders(app, calls)

    @app.task(shared=False)
    def plain_parent(fail: bool) -> str:
        if fail:
            raise KeyError("missing")
        return "done"

    def pipeline(fail: bool) -> Any:
        sig = JobSignature(plain_parent, (fail,), app=app)
        sig.then(rec.record_plain.s("then").set(queue=other))
        sig.catch(rec.record_plain.s("catch").set(queue=other))
        return sig.finally_(rec.record.s("finally").set(queue=other)).push()

    with in_process_worker(app, queues=[app.conf.task_default_queue, other]):
        ok, failed = pipeline(False), pipeline(True)
        calls.wait("finally", 2)
        calls.wait("then")
        [error] = calls.wait("catch")
        rec.settle(other)
    assert calls.of("then") == ["done"]
    assert error["task_id"] == failed.id and error["exception_type"] == "KeyError"
    assert error["message"] == "'missing'"
    assert {outcome["task_id"] for outcome in calls.of("finally")} == {ok.id, failed.id}
    assert set(calls.queues_of("then") + calls.queues_of("catch") + calls.queues_of("finally")) == {other}


def test_failing_then_callback_is_logged_masked_and_fires_no_parent_callback(
    canvas_app: tuple[Celery, Recorders], calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def parent() -> str:
        return "parent ok"

    @app.task(base=GuardedTask, shared=False)
    def broken_callback(result: str) -> None:
        calls.add("broken", result, None)
        raise RuntimeError(f"callback failed with token={SECRET}")

    caplog.set_level(logging.ERROR)
    with in_process_worker(app, loglevel="ERROR"):
        parent.s().then(broken_callback.s()).catch(rec.record.s("catch")).finally_(
            rec.record.s("finally")
        ).push()
        calls.wait("broken")
        calls.wait("finally")
        rec.settle()
    assert calls.of("broken") == ["parent ok"]
    assert calls.of("catch") == []
    assert [outcome["state"] for outcome in calls.of("finally")] == ["SUCCESS"]
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    assert "callback failed with token=***TOKEN***" in logged
    assert SECRET not in logged


def test_failing_catch_callback_does_not_fire_catch_or_finally_again(
    canvas_app: tuple[Celery, Recorders], calls: Calls
) -> None:
    app, rec = canvas_app

    @app.task(base=GuardedTask, shared=False)
    def parent() -> None:
        raise RuntimeError("parent failed")

    @app.task(base=GuardedTask, shared=False)
    def broken_handler(error: dict[str, Any]) -> None:
        calls.add("handler", error["message"], None)
        raise RuntimeError("handler failed too")

    with in_process_worker(app):
        parent.s().catch(broken_handler.s()).catch(rec.record.s("catch")).finally_(
            rec.record.s("finally")
        ).push()
        calls.wait("handler")
        calls.wait("catch")
        calls.wait("finally")
        rec.settle()
        rec.settle()
    assert calls.of("handler") == ["parent failed"]
    assert len(calls.of("catch")) == 1
    assert len(calls.of("finally")) == 1
