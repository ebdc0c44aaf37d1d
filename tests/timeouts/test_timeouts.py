"""Job timeouts on each pool behave as docs/timeouts.md says.

prefork and solo run ``celery -A tests.workerapp worker`` subprocesses (signals need a real
main thread); threads runs an in-process worker.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure

from celery_jobs_ext import DeadLetterQueue, GuardedTask, ImproperlyConfigured, JobsError, JobTimeout
from celery_jobs_ext.state import get_state
from celery_jobs_ext.timeouts import grace_for, task_timeout
from tests.harness import WorkerProcess, in_process_worker, unique, wait_for, worker_conf

#: A deadline, not a timing claim: a task that sleeps 30 s and is ready before this was interrupted.
INTERRUPTED_WITHIN = 20


def wait_for_outcome(app: Celery, task_id: str, timeout: float = 30) -> Any:
    """(state, result) once the task is ready."""
    result = app.AsyncResult(task_id)
    wait_for(result.ready, timeout=timeout, interval=0.05, message=f"task {task_id}")
    return result.state, result.result


# -- the exception and the rules ----------------------------------------------------------


def test_job_timeout_is_a_soft_time_limit_and_a_jobs_error_naming_the_job() -> None:
    exc = JobTimeout("proj.tasks.data_import", 300)
    assert isinstance(exc, SoftTimeLimitExceeded) and isinstance(exc, JobsError)
    assert str(exc) == "Job 'proj.tasks.data_import' exceeded timeout of 300 seconds"
    copy = pickle.loads(pickle.dumps(exc))
    assert (str(copy), copy.task_name, copy.seconds) == (str(exc), "proj.tasks.data_import", 300)
    # Celery's result backend rebuilds an exception from its message alone.
    assert str(JobTimeout(str(exc))) == str(exc)


def test_per_call_timeout_beats_the_task_attribute_which_beats_the_setting(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app(jobs_timeout=300)

    @app.task(base=GuardedTask, shared=False, name=unique("tests.default"))
    def default() -> None: ...

    @app.task(base=GuardedTask, shared=False, name=unique("tests.own"), timeout=900)
    def own() -> None: ...

    assert task_timeout(default) == 300
    assert task_timeout(own) == 900
    assert task_timeout(own, 60) == 60
    assert task_timeout(own, 0) == 0  # a call can switch its timeout off


def test_grace_is_capped_by_the_timeout_for_short_jobs() -> None:
    assert grace_for(300, 10) == 10
    assert grace_for(2, 10) == 2
    assert grace_for(0.2, 10) == 1
    assert grace_for(300, 0) == 0


def test_bad_timeouts_are_refused_before_publishing_naming_the_task(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    @app.task(base=GuardedTask, shared=False, name="tests.named")
    def named() -> None: ...

    for bad in (-1, "300", True):
        with pytest.raises(ImproperlyConfigured, match=r"timeout of tests\.named"):
            named.apply_async(timeout=bad)


# -- prefork ------------------------------------------------------------------------------


def test_prefork_raises_job_timeout_in_the_task_and_honours_a_per_call_timeout_from_the_message(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app(jobs_timeout_grace=1)

    @app.task(base=GuardedTask, shared=False, name="tests.timeouts.sleep")
    def sleep(seconds: float) -> Any: ...

    state = get_state(app)
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, concurrency=2) as worker:
        worker.wait_ready()
        cleaned = app.send_task("tests.timeouts.cleans_up", args=("prefork",))
        interrupted = sleep.apply_async((30,), timeout=1)
        reported = sleep.apply_async((0,), timeout=5)

        # The task caught JobTimeout (which is a SoftTimeLimitExceeded and a JobsError) and
        # finished its clean-up within the grace: a success, as with Celery's soft limit.
        assert wait_for_outcome(app, cleaned.id) == ("SUCCESS", "cleaned up")
        assert state.get_counters(["caught:prefork", "caught-kind:prefork"]) == [1, 3]
        message = app.backend.client.get(f"{app.conf.jobs_state_prefix}message:prefork").decode()
        assert message == "Job 'tests.timeouts.cleans_up' exceeded timeout of 1 seconds"

        # The per-call timeout travelled in the message to the other process. (Ready before
        # its 30 s sleep could end: it was interrupted.)
        state_name, exc = wait_for_outcome(app, interrupted.id, timeout=INTERRUPTED_WITHIN)
        assert (state_name, type(exc), str(exc)) == (
            "FAILURE",
            JobTimeout,
            "Job 'tests.timeouts.sleep' exceeded timeout of 1 seconds",
        )
        # Celery's own limits travel too: soft at the timeout, hard one grace (1 s) later.
        assert wait_for_outcome(app, reported.id) == ("SUCCESS", {"jobs_timeout": 5, "timelimit": [6, 5]})


def test_a_plain_tasks_soft_limit_after_a_guarded_job_is_celerys_own(make_app: Callable[..., Celery]) -> None:
    """The pool process keeps our soft-timeout handler after a guarded job; plain tasks
    still get Celery's bare SoftTimeLimitExceeded from it, not a JobTimeout."""
    app = make_app(jobs_timeout_grace=1)
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, concurrency=1) as worker:
        worker.wait_ready()
        guarded = app.send_task("tests.timeouts.sleep", args=(0,), headers={"jobs_timeout": 5})
        assert wait_for_outcome(app, guarded.id)[0] == "SUCCESS"
        plain = app.send_task("tests.timeouts.plain_soft_limit")
        assert wait_for_outcome(app, plain.id) == ("SUCCESS", "SoftTimeLimitExceeded")


# -- solo ---------------------------------------------------------------------------------


def test_solo_interrupts_the_task_with_sigalrm(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_timeout_grace=1)

    @app.task(base=GuardedTask, shared=False, name="tests.timeouts.sleep")
    def sleep(seconds: float) -> Any: ...

    state = get_state(app)
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, pool="solo") as worker:
        worker.wait_ready()
        interrupted = sleep.apply_async((30,), timeout=1)
        state_name, exc = wait_for_outcome(app, interrupted.id, timeout=INTERRUPTED_WITHIN)
        assert (state_name, type(exc)) == ("FAILURE", JobTimeout), worker.output()
        # A task that swallows the first JobTimeout (and sleeps 30 s more) gets a second one.
        stubborn = app.send_task("tests.dlq.ignores_timeout")
        state_name, exc = wait_for_outcome(app, stubborn.id, timeout=INTERRUPTED_WITHIN)
        assert (state_name, type(exc)) == ("FAILURE", JobTimeout)
        cleaned = app.send_task("tests.timeouts.cleans_up", args=("solo",))
        assert wait_for_outcome(app, cleaned.id) == ("SUCCESS", "cleaned up")
        assert state.get_counters(["caught:solo", "caught-kind:solo"]) == [1, 3]
        # A run() that calls super().run() is timed once, as a whole: the inner call's
        # alarm neither restarts nor cancels the outer one.
        nested = app.send_task("tests.timeouts.nested", args=(30,))
        state_name, exc = wait_for_outcome(app, nested.id, timeout=INTERRUPTED_WITHIN)
        assert (state_name, type(exc)) == ("FAILURE", JobTimeout)
        # The worker is still healthy: it runs the next task.
        assert wait_for_outcome(app, sleep.apply_async((0,)).id)[0] == "SUCCESS"


# -- threads ------------------------------------------------------------------------------


@pytest.fixture
def task_failures() -> Iterator[list[str]]:
    """Task ids, one per ``task_failure`` signal sent in this process."""
    seen: list[str] = []

    def record(sender: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
        seen.append(str(task_id))

    task_failure.connect(record, weak=False, dispatch_uid="tests.timeouts.task_failures")
    yield seen
    task_failure.disconnect(dispatch_uid="tests.timeouts.task_failures")


def test_threads_fails_a_late_task_as_timed_out_logs_it_and_dead_letters_it_once(
    make_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture, task_failures: list[str]
) -> None:
    app = make_app(jobs_dead_letter_queue=unique("dlq"), jobs_timeout=1)
    app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]

    @app.task(base=GuardedTask, shared=False, name=unique("tests.slow"))
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "finished"

    dlq = DeadLetterQueue(app)
    with (
        caplog.at_level(logging.WARNING, logger="celery_jobs_ext.timeouts"),
        in_process_worker(app, pool="threads"),
    ):
        late = slow.delay(1.3)
        quick = slow.delay(0.01)
        state_name, exc = wait_for_outcome(app, late.id)
        assert (state_name, type(exc)) == ("FAILURE", JobTimeout)
        assert wait_for_outcome(app, quick.id) == ("SUCCESS", "finished")
        wait_for(lambda: dlq.stats()["total"] == 1, timeout=10)
    [warning] = [r for r in caplog.records if r.name == "celery_jobs_ext.timeouts"]
    assert slow.name in warning.getMessage() and late.id in warning.getMessage()
    assert "past its timeout of 1 s" in warning.getMessage()
    [entry] = dlq.list()
    assert (entry["task_id"], entry["reason"]) == (late.id, "Timed out after 1 s")
    assert task_failures.count(late.id) == 1


def test_threads_retries_a_late_task_when_autoretry_covers_timeouts(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_dead_letter_queue=unique("dlq"), jobs_retry_strategy="fixed", jobs_retry_base=0)
    app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]

    @app.task(
        base=GuardedTask,
        bind=True,
        shared=False,
        name=unique("tests.slow_retried"),
        timeout=1,
        autoretry_for=(SoftTimeLimitExceeded,),
        max_retries=1,
    )
    def slow_retried(self: Task) -> str:
        get_state(app).incr(f"runs:{self.request.id}")
        time.sleep(1.2)
        return "late"

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = slow_retried.delay()
        wait_for(lambda: dlq.stats()["total"] == 1, timeout=20)
    assert get_state(app).get_counters([f"runs:{result.id}"]) == [2]
    [entry] = dlq.list()
    assert (entry["reason"], entry["attempts"]) == ("Timed out after 1 s", 2)
