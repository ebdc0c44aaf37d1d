"""A worker killed while an adapter sends its callback: the callback still fires, once.

The adapter claims the exactly-once guard, then sends. A worker SIGKILLed between the two
used to leave the guard claimed and nothing sent: the redelivered adapter found the key
taken and skipped, and the pipeline's ``finally_`` never ran (the full soak saw it once on
RabbitMQ). The callback task here blocks its own sending while a file exists, so the test
kills the worker at exactly that instant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import JobSignature
from celery_jobs_ext.state import get_state
from tests.harness import WorkerProcess, wait_for


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_worker_killed_between_the_callback_guard_and_the_send_still_fires_it_once(
    broker: str,
    make_app: Callable[..., Celery],
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    broker_url = redis_url if broker == "redis" else request.getfixturevalue("amqp_url")
    app = make_app(broker=broker_url, jobs_state_url=redis_url)
    state = get_state(app)
    conf = {
        "broker_url": broker_url,
        "result_backend": redis_url,
        "task_default_queue": app.conf.task_default_queue,
        "jobs_state_url": redis_url,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Redis hands a dead consumer's unacknowledged message out again after this.
        "broker_transport_options": {"visibility_timeout": 2, "unacked_restore_interval": 0.5},
    }
    hold = tmp_path / "hold"
    hold.touch()
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_HOLD_PUBLISH": str(hold)}
    queue = app.conf.task_default_queue

    signature = JobSignature("canvas.step", (0, 1, 0, None), app=app).finally_(
        JobSignature("canvas.held_report", ("finally",), app=app)
    )
    with WorkerProcess(env, queues=queue, concurrency=1, app="tests.canvas.workerapp") as first:
        first.wait_ready()
        signature.apply_async()
        wait_for(
            lambda: Path(str(hold) + ".reached").exists(),
            timeout=30,
            message="the adapter between its guard and the send",
        )
        first.kill()
    os.unlink(hold)

    with WorkerProcess(env, queues=queue, concurrency=1, app="tests.canvas.workerapp") as second:
        second.wait_ready()
        wait_for(
            lambda: state.get_counters(["finally"]) == [1],
            timeout=60,
            message="the finally_ callback after the redelivery",
        )
        # The redelivered adapter sent it once; nothing else sends it again.
        wait_for(lambda: "claimed by a run that did not finish" in second.output(), timeout=10)
    assert state.get_counters(["finally", "ran:1:0"]) == [1, 1]
