"""The app that ``celery worker`` subprocesses in the tests load (``-A tests.workerapp``).

Configured from the environment so one module serves every test:
``JOBS_TEST_CONF`` is a JSON object of settings (broker_url, jobs_*, …).
"""

from __future__ import annotations

import json
import os

from celery import Celery

from celery_jobs_ext import GuardedTask

app = Celery("tests.workerapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))


@app.task(base=GuardedTask, name="tests.guarded_add")
def guarded_add(x: int, y: int) -> int:
    return x + y


@app.task(name="tests.plain_add")
def plain_add(x: int, y: int) -> int:
    return x + y
