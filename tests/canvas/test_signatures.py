"""The canvas each fluent method produces, and what survives serialisation (no worker needed)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, Task
from celery.canvas import Signature, _chain
from kombu.utils.json import dumps, loads

from celery_jobs_ext import ChainingError, GuardedTask, JobChain, JobSignature
from celery_jobs_ext.timeouts import TIMEOUT_HEADER


@pytest.fixture
def tasks(make_app: Callable[..., Celery]) -> Any:
    app = make_app()

    class Tasks:
        @app.task(base=GuardedTask, shared=False, name="t.add")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(shared=False, name="t.notify")
        def notify(payload: Any) -> None: ...

        @app.task(shared=False, bind=True, name="t.bound_notify")
        def bound_notify(self: Task, payload: Any, label: str) -> None: ...

        @app.task(shared=False, name="t.celery_errback")
        def celery_errback(request: Any, exc: Any, traceback: Any) -> None: ...

    return Tasks


def test_guarded_task_signature_factories_return_job_signatures(tasks: Any) -> None:
    add = tasks.add
    for sig in (add.s(1, 2), add.si(1, 2), add.signature((1, 2)), add.subtask((1, 2))):
        assert type(sig) is JobSignature
        assert (sig.task, tuple(sig.args), sig["subtask_type"]) == ("t.add", (1, 2), None)
    assert add.si(1, 2).immutable and not add.s(1, 2).immutable
    assert type(add.s(1, 2).clone()) is JobSignature


def test_then_catch_and_finally_map_to_link_and_link_error_through_the_adapters(tasks: Any) -> None:
    sig = (
        tasks.add.s(1, 2)
        .then(tasks.notify.s())
        .catch(tasks.notify.s().set(queue="alerts"))
        .finally_(tasks.bound_notify.s("done"))
    )
    then, finally_ok = sig.options["link"]
    catch, finally_failed = sig.options["link_error"]
    assert then == tasks.notify.s()
    assert (catch.task, catch.options, catch.kwargs["callback"]) == (
        "jobs.catch",
        {"queue": "alerts"},
        tasks.notify.s().set(queue="alerts"),
    )
    assert (finally_ok.task, finally_failed.task) == ("jobs.finally", "jobs.finally")
    assert finally_ok.kwargs["on"] == "success" and finally_failed.kwargs["on"] == "failure"
    assert finally_ok.kwargs["slot"] == finally_failed.kwargs["slot"] != catch.kwargs["slot"]
    assert finally_ok.kwargs["callback"] == tasks.bound_notify.s("done")


def test_job_signature_comes_back_from_json_and_pickle_as_a_plain_equal_signature(tasks: Any) -> None:
    sig = tasks.add.s(1, 2).then(tasks.notify.s()).catch(tasks.notify.s()).always(tasks.notify.s())
    sig.timeout(30).on_queue("fast")
    for rebuilt in (Signature.from_dict(loads(dumps(sig))), pickle.loads(pickle.dumps(sig))):
        assert type(rebuilt) is Signature
        assert loads(dumps(rebuilt)) == loads(dumps(sig))
    assert "JobSignature" not in Signature.TYPES and "JobChain" not in Signature.TYPES


def test_timeout_and_on_queue_set_the_options_and_refuse_bad_values(tasks: Any) -> None:
    sig = tasks.add.s(1, 2).timeout(2.5).on_queue("fast")
    assert sig.options["timeout"] == 2.5 and sig.options["queue"] == "fast"
    assert sig.options["headers"] == {TIMEOUT_HEADER: 2.5}
    for bad in (0, -1, "10", True, None):
        with pytest.raises(ChainingError, match="timeout\\(\\) takes a positive number"):
            tasks.add.s(1, 2).timeout(bad)
    for bad in ("", "  ", None, 3):
        with pytest.raises(ChainingError, match="on_queue\\(\\) takes a queue name"):
            tasks.add.s(1, 2).on_queue(bad)


def test_push_publishes_with_the_options_and_returns_the_async_result(tasks: Any, redis_url: str) -> None:
    import redis

    sig = tasks.add.s(1, 2).on_queue(tasks.add.app.conf.task_default_queue)
    result = sig.push(countdown=60)
    assert result.id and result.id == result.task_id
    [raw] = redis.Redis.from_url(redis_url).lrange(tasks.add.app.conf.task_default_queue, 0, -1)
    assert loads(raw)["headers"]["id"] == result.id and loads(raw)["headers"]["eta"]


def test_callbacks_that_cannot_take_what_they_would_get_are_refused_when_attached(tasks: Any) -> None:
    with pytest.raises(ChainingError, match=r"not the task t\.notify itself"):
        tasks.add.s(1, 2).then(tasks.notify)
    with pytest.raises(ChainingError, match=r"Write it as def celery_errback\(error\)"):
        tasks.add.s(1, 2).catch(tasks.celery_errback.s())
    with pytest.raises(ChainingError, match=r"def celery_errback\(outcome\)"):
        tasks.add.s(1, 2).finally_(tasks.celery_errback.s())
    with pytest.raises(ChainingError, match=r"Use \.si\(\)"):
        tasks.add.s(1, 2).then(tasks.add.s())
    with pytest.raises(ChainingError, match="takes a signature"):
        tasks.add.s(1, 2).catch(lambda error: None)
    # Bound tasks, stored arguments, immutable and by-name callbacks are fine.
    tasks.add.s(1, 2).catch(tasks.bound_notify.s("label")).then(tasks.add.si(1, 1))
    tasks.add.s(1, 2).catch(JobSignature("elsewhere.handler")).then(dict(tasks.notify.s()))


def test_chain_methods_apply_to_the_chain_and_on_queue_to_every_step(tasks: Any) -> None:
    add = tasks.add
    pipeline = add.s(1, 2).chain([add.s(3), add.s(4)]).then(tasks.notify.s()).catch(tasks.notify.s())
    assert type(pipeline) is JobChain and isinstance(pipeline, _chain)
    assert [step["args"] for step in pipeline.tasks] == [(1, 2), (3,), (4,)]
    assert pipeline.options["link"] == [tasks.notify.s()]
    assert [errback.task for errback in pipeline.options["link_error"]] == ["jobs.catch"]
    assert all("link" not in step.options for step in pipeline.tasks)
    pipeline.on_queue("q").timeout(9)
    assert [(step.options["queue"], step.options["timeout"]) for step in pipeline.tasks] == [("q", 9)] * 3
    assert "queue" not in pipeline.options
    assert type(Signature.from_dict(loads(dumps(pipeline)))) is _chain


def test_nested_chains_are_spliced_with_their_callbacks_kept_on_their_steps(tasks: Any) -> None:
    add, notify = tasks.add, tasks.notify
    inner = add.s(3).chain([add.s(4)]).then(notify.s()).catch(notify.s())
    outer = add.s(1, 2).chain([inner, add.s(5)])
    assert [step["args"] for step in outer.tasks] == [(1, 2), (3,), (4,), (5,)]
    assert outer.tasks[2].options["link"] == [notify.s()]  # inner's then: after its last step
    assert ["link_error" in step.options for step in outer.tasks] == [False, True, True, False]


def test_pipe_builds_a_job_chain_and_keeps_chain_callbacks_on_the_whole_chain(tasks: Any) -> None:
    add, notify = tasks.add, tasks.notify
    head = (add.s(1, 2) | add.s(3)).finally_(notify.s())
    assert type(head) is JobChain
    longer = head | add.s(4)
    assert type(longer) is JobChain and len(longer.tasks) == 3
    assert longer.options["link"] == head.options["link"]
    assert longer.options["link_error"] == head.options["link_error"]
    assert type(add.s(1, 2) | JobSignature("x") | JobSignature("y")) is JobChain
