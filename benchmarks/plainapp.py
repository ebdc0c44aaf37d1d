"""A worker app without the extension: the baseline for "plain tasks cost nothing extra".

``celery -A benchmarks.plainapp worker``: the same no-op and CPU-marker tasks as
``tests.workerapp`` under the same names, but ``celery_jobs_ext`` is never imported, so
none of its receivers, strategies or settings exist in this worker.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress

import redis
from celery import Celery

app = Celery("benchmarks.plainapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))
_ledger = redis.Redis.from_url(os.environ.get("JOBS_TEST_LEDGER_URL", "redis://127.0.0.1:6379/11"))


def _worker_cpu_seconds() -> float:
    """CPU seconds of the pool process's parent and all its children (as tests.workerapp)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as listing:
            pids = [parent, *(int(pid) for pid in listing.read().split())]
        total = 0
        for pid in pids:
            with suppress(OSError), open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except OSError:  # not Linux: this process only
        times = os.times()
        return times.user + times.system


@app.task(name="tests.plain_noop", ignore_result=True)
def plain_noop() -> None:
    return None


@app.task(name="tests.mark_cpu", ignore_result=True)
def mark_cpu(key: str) -> None:
    """Append ``[time, worker CPU seconds]`` to a Redis list."""
    _ledger.rpush(key, json.dumps([time.time(), _worker_cpu_seconds()]))
