"""The app the canvas tests run in ``celery worker`` subprocesses (``-A tests.canvas.workerapp``).

Configured from ``JOBS_TEST_CONF`` (JSON settings), like ``tests/workerapp.py``. Callbacks
report through the shared state, which the test reads from its own process.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.state import get_state

app = Celery("tests.canvas.workerapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))


@app.task(base=GuardedTask, name="canvas.step")
def step(previous: int, pipeline: int, index: int, fail_at: int | None) -> int:
    get_state(app).incr(f"ran:{pipeline}:{index}")
    if index == fail_at:
        raise RuntimeError(f"pipeline {pipeline} step {index}")
    return previous + 1


@app.task(base=GuardedTask, name="canvas.sleep")
def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@app.task(base=GuardedTask, name="canvas.report")
def report(payload: Any, key: str) -> None:
    """Count the call under ``key`` and keep the last payload as JSON beside it."""
    state = get_state(app)
    state.hset(f"{key}:payload", {"json": json.dumps(payload)})
    state.incr(key)


class HeldOnPublish(GuardedTask):  # type: ignore[misc]
    """A callback whose sending blocks while ``JOBS_TEST_HOLD_PUBLISH`` names an existing file.

    It marks ``<file>.reached`` first, so a test knows the worker is between the adapter's
    claim of the exactly-once guard and the send, and can SIGKILL it exactly there.
    """

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        hold = os.environ.get("JOBS_TEST_HOLD_PUBLISH")
        if hold and os.path.exists(hold):
            with open(hold + ".reached", "w"):
                pass
            deadline = time.monotonic() + 120
            while os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().apply_async(*args, **kwargs)


@app.task(base=HeldOnPublish, name="canvas.held_report")
def held_report(payload: Any, key: str) -> None:
    """``report`` through :class:`HeldOnPublish`."""
    get_state(app).incr(key)
