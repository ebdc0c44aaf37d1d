"""A Celery app that knows nothing of celery_jobs_ext (``-A tests.canvas.plainapp``).

It never installs the extension, so ``jobs.catch``/``jobs.finally`` are not registered
here: what a worker of an older or foreign code base sees when a pipeline reaches it.
"""

from __future__ import annotations

import json
import os

from celery import Celery

app = Celery("tests.canvas.plainapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))


@app.task(name="plain.double")
def double(x: int) -> int:
    return x * 2


@app.task(name="plain.fail")
def fail(previous: int, text: str) -> None:
    raise RuntimeError(f"{text} after {previous}")


@app.task(name="plain.registered")
def registered() -> list[str]:
    """The task names this worker knows: proof that the adapters are not among them."""
    return sorted(app.tasks)
