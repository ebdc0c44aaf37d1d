"""The app that ``celery worker`` subprocesses in the tests load (``-A tests.workerapp``).

Configured from the environment so one module serves every test:
``JOBS_TEST_CONF`` is a JSON object of settings (broker_url, jobs_*, …).
"""

from __future__ import annotations

import json
import os
import time

import redis
from celery import Celery, Task
from celery.utils.log import get_task_logger

from celery_jobs_ext import GuardedTask

app = Celery("tests.workerapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))


@app.task(base=GuardedTask, name="tests.guarded_add")
def guarded_add(x: int, y: int) -> int:
    return x + y


@app.task(name="tests.plain_add")
def plain_add(x: int, y: int) -> int:
    return x + y


# -- planted secrets: the masking end-to-end test ------------------------------------

logger = get_task_logger(__name__)


@app.task(base=GuardedTask, name="tests.leak_in_args")
def leak_in_args(text: str, **kwargs: object) -> str:
    return "ok"


@app.task(base=GuardedTask, name="tests.leak_in_log")
def leak_in_log(text: str) -> None:
    logger.info("payload: %s", text)
    logger.warning(text)
    print(f"printed {text}")


@app.task(base=GuardedTask, name="tests.leak_in_exception")
def leak_in_exception(text: str) -> None:
    raise RuntimeError(f"could not process {text}")


@app.task(base=GuardedTask, name="tests.leak_in_return")
def leak_in_return(text: str) -> str:
    return text


# -- an independent ledger: tasks write their own start times, not the code under test ------

_ledger_client = None


def _ledger() -> redis.Redis:
    global _ledger_client
    if _ledger_client is None:
        _ledger_client = redis.Redis.from_url(os.environ["JOBS_TEST_LEDGER_URL"])
    return _ledger_client


@app.task(base=GuardedTask, bind=True, name="tests.record_start")
def record_start(self: Task, ledger_key: str, tag: str, seconds: float = 0.0) -> None:
    """Append (start time, tag, task id, pid) to a Redis list; optionally take some time."""
    _ledger().rpush(ledger_key, json.dumps([time.time(), tag, self.request.id, os.getpid()]))
    if seconds:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)


# -- benchmarks: no-op tasks, plain and guarded, and a marker that writes the time ---------


@app.task(name="tests.plain_noop", ignore_result=True)
def plain_noop() -> None:
    return None


@app.task(base=GuardedTask, name="tests.guarded_noop", ignore_result=True)
def guarded_noop() -> None:
    return None


@app.task(name="tests.mark", ignore_result=True)
def mark(key: str) -> None:
    _ledger().rpush(key, repr(time.time()))
