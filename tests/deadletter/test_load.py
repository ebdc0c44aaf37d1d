"""1,000 always-failing tasks across two worker processes: exactly 1,000 entries, none lost or doubled."""

from __future__ import annotations

import time
from collections.abc import Callable

from celery import Celery

from celery_jobs_ext import DeadLetterQueue
from tests.harness import WorkerProcess, unique, wait_for, worker_conf

TASKS = 1000


def test_thousand_failing_tasks_on_two_workers_yield_exactly_a_thousand_entries(
    make_app: Callable[..., Celery], broker: str, redis_url: str
) -> None:
    app = make_app(broker=broker, jobs_dead_letter_queue=unique("dlq"), jobs_state_url=redis_url)
    app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]
    queue = app.conf.task_default_queue
    dlq = DeadLetterQueue(app)
    env = worker_conf(app)
    workers = [WorkerProcess(env, queues=queue, concurrency=2) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        started = time.monotonic()
        with app.producer_or_acquire() as producer:
            sent = {
                app.send_task("tests.dlq.always_fails", args=(n,), producer=producer).id for n in range(TASKS)
            }
        wait_for(lambda: dlq.stats()["total"] >= TASKS, timeout=60, interval=0.5, message=f"{TASKS} entries")
        elapsed = time.monotonic() - started
        outputs = [worker.output() for worker in workers]
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    # Both workers took part, and with them stopped the queue holds exactly one entry per task.
    assert all(output.count("tests.dlq.always_fails") > 0 for output in outputs)
    assert dlq.stats() == {"total": TASKS, "by_queue": {queue: TASKS}}
    stored = [entry["task_id"] for entry in dlq.list(limit=None)]
    assert len(stored) == TASKS and set(stored) == sent
    print(f"{TASKS} failures dead-lettered in {elapsed:.1f} s")
