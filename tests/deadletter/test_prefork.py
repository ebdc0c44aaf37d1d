"""Failures only a real prefork worker produces: hard time limits, killed children, timeouts.

Each runs a ``celery -A tests.workerapp worker`` subprocess (prefork, 2 children) on Redis
and on RabbitMQ; the tasks live in ``tests/workerapp.py`` and check a "fixed" flag in the
shared state, which the test sets before replaying them.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from celery_jobs_ext import DeadLetterQueue
from celery_jobs_ext.state import get_state
from tests.deadletter.test_deadletter import wait_for_entries, wait_for_success
from tests.harness import WorkerProcess, unique, wait_for, worker_conf

KILLED = ("hard_limit", "kill_child", "ignores_timeout", "unhandled_timeout")


def test_killed_lost_and_timed_out_tasks_are_each_dead_lettered_once_and_replay_after_the_fix(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app(jobs_timeout_grace=1)
    dlq = DeadLetterQueue(app)
    state = get_state(app)
    env = worker_conf(app, test_count_task_failures=True)
    with WorkerProcess(env, queues=app.conf.task_default_queue, concurrency=2) as worker:
        worker.wait_ready()
        ids = {name: app.send_task(f"tests.dlq.{name}").id for name in KILLED}
        wait_for_entries(dlq, len(KILLED), timeout=60)
        entries = {entry["task_id"]: entry for entry in dlq.list()}
        assert sorted(entries) == sorted(ids.values()), worker.output()
        reasons = {name: entries[task_id]["reason"] for name, task_id in ids.items()}
        assert reasons == {
            "hard_limit": "Time limit exceeded (1 s)",
            "kill_child": "Worker lost",
            "ignores_timeout": "Timed out after 1 s",
            "unhandled_timeout": "Timed out after 1 s",
        }
        exceptions = {name: entries[task_id]["exception"] for name, task_id in ids.items()}
        assert exceptions["hard_limit"].startswith("TimeLimitExceeded")
        assert exceptions["kill_child"].startswith("WorkerLostError: Worker exited prematurely")
        assert exceptions["ignores_timeout"].startswith("TimeLimitExceeded")
        assert exceptions["unhandled_timeout"] == (
            "JobTimeout: Job 'tests.dlq.unhandled_timeout' exceeded timeout of 1 seconds"
        )
        assert all(entry["attempts"] == 1 for entry in entries.values())
        # task_failure fired once per task: in the child for the soft timeout, in the
        # parent for the others (Celery 5.7 alone would send it twice for a hard limit).
        counts = state.get_counters([f"task_failure:{task_id}" for task_id in ids.values()])
        assert counts == [1] * len(KILLED), dict(zip(ids, counts, strict=True))

        for name in KILLED:
            state.incr(f"fixed:{name}")
        assert sorted(dlq.replay()) == sorted(ids.values())
        for task_id in ids.values():
            assert wait_for_success(app, task_id, timeout=30) == "ok"
        assert "could not be dead-lettered" not in worker.output()
    assert dlq.stats() == {"total": 0, "by_queue": {}}


def test_requeued_lost_task_runs_again_and_is_dead_lettered_once_its_retries_are_spent(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()
    dlq = DeadLetterQueue(app)
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, concurrency=1) as worker:
        worker.wait_ready()
        task_id = app.send_task("tests.dlq.lost_requeued").id
        wait_for_entries(dlq, 1, timeout=60)
        [entry] = dlq.list()
        assert get_state(app).get_counters([f"runs:{task_id}"]) == [2], worker.output()
        assert (entry["task_id"], entry["reason"], entry["attempts"]) == (task_id, "Worker lost", 2)
        assert wait_for(lambda: app.AsyncResult(task_id).state == "FAILURE", timeout=10)
    assert dlq.stats()["total"] == 1


def test_entry_that_cannot_be_published_keeps_the_original_message_until_it_can(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = make_app(jobs_dead_letter_queue=unique("dlq"))
    app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]
    dlq = DeadLetterQueue(app)
    state = get_state(app)
    # The worker consumes from the real broker but publishes to a port nobody listens on.
    broken = worker_conf(app, broker_read_url=redis_url, broker_write_url="redis://127.0.0.1:1/11")
    with WorkerProcess(broken, queues=app.conf.task_default_queue, concurrency=1) as worker:
        worker.wait_ready()
        task_id = app.send_task("tests.dlq.always_fails").id
        wait_for(lambda: state.get_counters([f"runs:{task_id}"])[0] >= 2, timeout=30, message="a second run")
        assert f"[{task_id}] failed for good (ValueError) but could not be dead-lettered" in worker.output()
        assert "The message is requeued, so nothing is lost." in worker.output()
    assert dlq.stats()["total"] == 0
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, concurrency=1) as worker:
        worker.wait_ready()
        wait_for_entries(dlq, 1, timeout=30)
    assert [entry["task_id"] for entry in dlq.list()] == [task_id]
