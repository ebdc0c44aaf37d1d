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


@app.task(base=GuardedTask, name="tests.leak_in_return_list")
def leak_in_return_list(items: list[str]) -> list[str]:
    return items


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


@app.task(bind=True, name="tests.plain_record_start")
def plain_record_start(self: Task, ledger_key: str, tag: str, seconds: float = 0.0) -> None:
    """``record_start`` as a plain Celery task (no GuardedTask)."""
    _ledger().rpush(ledger_key, json.dumps([time.time(), tag, self.request.id, os.getpid()]))


@app.task(base=GuardedTask, bind=True, name="tests.record_run", acks_late=True)
def record_run(self: Task, ledger_key: str, seconds: float) -> str:
    """Record "start", take ``seconds``, record "end": a run that ended is one that succeeded."""
    _ledger().rpush(ledger_key, json.dumps(["start", os.getpid()]))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    _ledger().rpush(ledger_key, json.dumps(["end", os.getpid()]))
    return "done"


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


# -- dead-letter queue and timeouts: tasks that fail for good in every way -----------------
# Each checks a "fixed" flag in the shared state first, so the test can fix the cause and
# replay them. Keys live under the test's own jobs_state_prefix.

import os as _os  # noqa: E402
import signal as _signal  # noqa: E402
from contextlib import suppress as _suppress  # noqa: E402

from celery.exceptions import SoftTimeLimitExceeded  # noqa: E402
from celery.signals import task_failure  # noqa: E402

from celery_jobs_ext import JobsError, JobTimeout  # noqa: E402
from celery_jobs_ext.state import get_state  # noqa: E402


def _fixed(key: str) -> bool:
    return get_state(app).get_counters([f"fixed:{key}"])[0] > 0


def _count(key: str) -> int:
    return get_state(app).incr(key)


@task_failure.connect(weak=False, dispatch_uid="tests.workerapp.count_task_failure")
def _count_task_failure(sender: object = None, task_id: str | None = None, **kwargs: object) -> None:
    """Count task_failure per task id, in whichever process it fires (``test_count_task_failures``)."""
    if app.conf.get("test_count_task_failures") and getattr(sender, "jobs_guarded", False):
        _count(f"task_failure:{task_id}")


@app.task(base=GuardedTask, name="tests.dlq.hard_limit", time_limit=1)
def dlq_hard_limit() -> str:
    if _fixed("hard_limit"):
        return "ok"
    time.sleep(30)
    return "unreachable"


@app.task(base=GuardedTask, name="tests.dlq.kill_child", acks_late=True)
def dlq_kill_child() -> str:
    if _fixed("kill_child"):
        return "ok"
    _os.kill(_os.getpid(), _signal.SIGKILL)
    return "unreachable"


@app.task(
    base=GuardedTask,
    bind=True,
    name="tests.dlq.lost_requeued",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=1,
)
def dlq_lost_requeued(self: Task) -> str:
    _count(f"runs:{self.request.id}")
    if _fixed("lost_requeued"):
        return "ok"
    _os.kill(_os.getpid(), _signal.SIGKILL)
    return "unreachable"


@app.task(base=GuardedTask, name="tests.dlq.ignores_timeout", timeout=1)
def dlq_ignores_timeout() -> str:
    if _fixed("ignores_timeout"):
        return "ok"
    with _suppress(SoftTimeLimitExceeded):  # carries on regardless: the hard limit must stop it
        time.sleep(30)
    time.sleep(30)
    return "unreachable"


@app.task(base=GuardedTask, name="tests.dlq.unhandled_timeout", timeout=1)
def dlq_unhandled_timeout() -> str:
    if _fixed("unhandled_timeout"):
        return "ok"
    time.sleep(30)
    return "unreachable"


@app.task(base=GuardedTask, bind=True, name="tests.dlq.always_fails", acks_late=True)
def dlq_always_fails(self: Task, *args: object, **kwargs: object) -> None:
    _count(f"runs:{self.request.id}")
    raise ValueError(f"always fails: {args!r} {kwargs!r}")


@app.task(base=GuardedTask, bind=True, name="tests.timeouts.sleep")
def timeouts_sleep(self: Task, seconds: float) -> dict[str, object]:
    """Sleeps; reports what it saw of its timeout (the header a per-call timeout travels in)."""
    time.sleep(seconds)
    return {"jobs_timeout": self.request.get("jobs_timeout"), "timelimit": self.request.timelimit}


@app.task(base=GuardedTask, name="tests.timeouts.cleans_up", timeout=1)
def timeouts_cleans_up(key: str) -> str:
    """Catches its timeout, records what it caught, cleans up within the grace, succeeds."""
    try:
        time.sleep(30)
    except JobTimeout as exc:
        state = get_state(app)
        state.incr(f"caught:{key}")
        flags = int(isinstance(exc, SoftTimeLimitExceeded)) + 2 * int(isinstance(exc, JobsError))
        state.incr(f"caught-kind:{key}", flags)
        app.backend.client.set(f"{app.conf.jobs_state_prefix}message:{key}", str(exc))
        return "cleaned up"
    return "not interrupted"


class _SleepsFirst(GuardedTask):
    """A class-based task whose subclass calls ``super().run()``: the timeout covers the whole."""

    def run(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"


class _NestedSleep(_SleepsFirst):
    name = "tests.timeouts.nested"
    timeout = 1

    def run(self, seconds: float) -> str:
        super().run(0.2)
        time.sleep(seconds)
        return "not interrupted"


nested_sleep = app.register_task(_NestedSleep())


@app.task(name="tests.timeouts.plain_soft_limit", soft_time_limit=1)
def timeouts_plain_soft_limit() -> str:
    """A plain task under Celery's own soft limit: reports the exception class it caught."""
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded as exc:
        return type(exc).__name__
    return "not interrupted"


# -- health and metrics: a task whose outcome the test chooses --------------------------------


@app.task(base=GuardedTask, bind=True, name="tests.health.job", ignore_result=True)
def health_job(self: Task, outcome: str = "ok", seconds: float = 0.0) -> str:
    """Takes ``seconds``, then succeeds, fails for good (``fail``) or retries once (``retry_once``)."""
    if seconds:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
    if outcome == "fail":
        raise RuntimeError("permanent failure")
    if outcome == "retry_once" and not self.request.retries:
        raise self.retry(countdown=0, max_retries=1)
    return outcome


# -- benchmarks: a marker that also records the worker's CPU time ------------------------


def _worker_cpu_seconds() -> float:
    """CPU seconds (user + system) of this pool process's parent and of all its children.

    Read from ``/proc`` by a pool process at the moment it runs, so a marker at the head and
    one at the tail of a backlog bracket exactly the CPU the worker spent draining it.
    """
    ticks = _os.sysconf("SC_CLK_TCK")
    parent = _os.getppid()
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as listing:
            pids = [parent, *(int(pid) for pid in listing.read().split())]
        total = 0
        for pid in pids:
            with _suppress(OSError), open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except OSError:  # not Linux: this process only
        times = _os.times()
        return times.user + times.system


@app.task(name="tests.mark_cpu", ignore_result=True)
def mark_cpu(key: str) -> None:
    """Append ``[time, worker CPU seconds]`` to a Redis list."""
    _ledger().rpush(key, json.dumps([time.time(), _worker_cpu_seconds()]))


@app.task(base=GuardedTask, bind=True, name="tests.dlq.fails_after", acks_late=True)
def dlq_fails_after(self: Task, ledger_key: str, seconds: float) -> None:
    """Busy for ``seconds``, then fails for good; each run appends its task id to the ledger."""
    _ledger().rpush(ledger_key, str(self.request.id))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    raise ValueError("fails after being busy")
