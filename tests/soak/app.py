"""The app the soak's ``celery worker`` subprocesses load (``-A tests.soak.app``).

Configured from the environment, like ``tests/workerapp.py``: ``JOBS_SOAK_CONF`` holds the
Celery and ``jobs_*`` settings as JSON, ``JOBS_SOAK_LEDGER_URL`` and
``JOBS_SOAK_LEDGER_PREFIX`` say where the ledger lives.

The ledger is independent of the code under test: every task writes it itself with plain
redis-py, on a Redis that no fault touches. Each execution adds a start record and, if it
gets that far, an end record; a task is idempotent by its id (an execution that finds its
id already succeeded does nothing and records a ``skip``), so a redelivery is visible as an
extra execution instead of a second success.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery, Task, bootsteps
from celery.utils.log import get_task_logger

from celery_jobs_ext import GuardedTask, JobTimeout

logger = get_task_logger(__name__)

#: Ledger keys, under the run's prefix.
ATTEMPTS = "att"  # hash: task id -> executions started
DONE = "done"  # hash: task id -> first success (HSETNX)
FAILED = "fail"  # hash: task id -> last failure for good
EVENTS = "ev"  # list: one JSON record per execution start ("s") and end ("e")
RUNNING = "running"  # hash: pool process id -> the task it is running now
CALLBACKS = "cb"  # hash: "kind|pipeline|callback id" -> what the callback received
SHELL = "shell"  # hash: task id -> executions (written by the shell command itself)
HANDOVER = "handover"  # list: when the rate-limit gate handed a limited queue's request to the pool


class ChargeDeclined(Exception):
    """The dead-letter-prone task's failure for good."""


class GatewayTimeout(Exception):
    """The retrying task's transient failure (first attempt only)."""


class StepFailed(Exception):
    """A pipeline step's failure for good."""


_client: redis.Redis | None = None
_client_pid = 0


def ledger() -> redis.Redis:
    """This process's ledger connection (a forked pool process opens its own)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(os.environ["JOBS_SOAK_LEDGER_URL"], socket_timeout=10)
        _client_pid = os.getpid()
    return _client


def key(name: str) -> str:
    return f"{os.environ['JOBS_SOAK_LEDGER_PREFIX']}{name}"


class Run:
    """One execution of a soak task, recorded in the ledger when it starts and when it ends."""

    def __init__(self, task: Task, kind: str) -> None:
        request = task.request
        self.task_id = str(request.id)
        self.kind = kind
        self.queue = str((request.delivery_info or {}).get("routing_key") or "")
        self.retries = int(request.retries or 0)
        self.pid = os.getpid()
        now = time.time()
        pipe = ledger().pipeline(transaction=False)
        pipe.hincrby(key(ATTEMPTS), self.task_id, 1)
        pipe.hexists(key(DONE), self.task_id)
        pipe.hset(key(RUNNING), str(self.pid), json.dumps([self.task_id, kind, now]))
        pipe.rpush(key(EVENTS), self._record(now, "s", ""))
        _, self.already_done, *_ = pipe.execute()

    def _record(self, now: float, phase: str, outcome: str) -> str:
        return json.dumps(
            [round(now, 4), phase, self.task_id, self.pid, self.queue, self.kind, outcome, self.retries]
        )

    def end(self, outcome: str, callback: tuple[str, dict[str, Any]] | None = None) -> None:
        """Record how this execution ended: ``ok``, ``skip``, ``retry`` or ``fail``."""
        now = time.time()
        pipe = ledger().pipeline(transaction=False)
        if outcome == "ok":
            pipe.hsetnx(key(DONE), self.task_id, json.dumps([now, self.pid, self.queue]))
        elif outcome == "fail":
            pipe.hset(key(FAILED), self.task_id, json.dumps([now, self.pid, self.queue]))
        if callback is not None:
            field, received = callback
            pipe.hset(key(CALLBACKS), f"{field}|{self.task_id}", json.dumps(received))
        pipe.rpush(key(EVENTS), self._record(now, "e", outcome))
        pipe.hdel(key(RUNNING), str(self.pid))
        pipe.execute()


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


class HandOverLedger(bootsteps.StartStopStep):
    """Consumer bootstep: note when a rate-limited queue's request is handed to the pool.

    The tasks note when their body starts, which is later by however long the request waited
    for a free pool process; this notes the moment the rate-limit gate lets it through, which
    is what the limit governs. It wraps the handler the gate calls once a request may start
    (``RateLimitStep.handle``); if the gate is not found, nothing is noted and the soak's
    rate-limit check fails for want of data rather than passing without it.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        gate = getattr(parent.on_task_request, "__self__", None)
        handle = getattr(gate, "handle", None)
        if handle is None or getattr(handle, "soak_hand_over", False):
            return
        limited = set(parent.app.conf.get("jobs_queue_rate_limits") or {})

        def handed_over(request: Any) -> Any:
            if (request.delivery_info or {}).get("routing_key") in limited:
                ledger().rpush(key(HANDOVER), json.dumps([round(time.time(), 4), request.id, os.getpid()]))
            return handle(request)

        handed_over.soak_hand_over = True  # type: ignore[attr-defined]
        gate.handle = handed_over


def build_app(conf: dict[str, Any]) -> Celery:
    """A Celery app with the soak's tasks, configured with ``conf``.

    The workers build it from ``JOBS_SOAK_CONF``; the harness builds its own with the same
    settings to publish through ``GuardedTask.apply_async`` (where reprs are masked).
    """
    app = Celery("tests.soak.app")
    app.conf.update(conf)
    app.steps["consumer"].add(HandOverLedger)

    @app.task(base=GuardedTask, bind=True, name="soak.work", shared=False)
    def work(self: Task, note: str, seconds: float = 0.0, **payload: Any) -> dict[str, str]:
        """Plain work: logs its (secret-laden) arguments, optionally takes some time, succeeds."""
        run = Run(self, "slow" if seconds else "work")
        if run.already_done:
            run.end("skip")
            return {"status": "already done"}
        logger.info("working on %s with %r", note, payload)
        _sleep(seconds)
        run.end("ok")
        return {"status": "done"}

    @app.task(base=GuardedTask, bind=True, name="soak.flaky", shared=False)
    def flaky(self: Task, card: str, declined: bool, **payload: Any) -> dict[str, str]:
        """Fails for good when ``declined``, with secrets in the exception message and the log."""
        run = Run(self, "flaky")
        if run.already_done:
            run.end("skip")
            return {"status": "already charged"}
        if declined:
            logger.warning("declining card %s for %r", card, payload)
            run.end("fail")
            raise ChargeDeclined(f"card {card} declined by the gateway using key {payload.get('api_key')}")
        run.end("ok")
        return {"status": "charged"}

    @app.task(base=GuardedTask, bind=True, name="soak.retry", shared=False, max_retries=3)
    def retry(self: Task, note: str, **payload: Any) -> dict[str, str]:
        """Fails on its first attempt (a retry, secrets in the reason); succeeds on the second."""
        run = Run(self, "retry")
        if run.already_done:
            run.end("skip")
            return {"status": "already done"}
        if not self.request.retries:
            run.end("retry")
            raise self.retry(exc=GatewayTimeout(f"gateway timed out for {note}"))
        run.end("ok")
        return {"status": "done on retry"}

    @app.task(base=GuardedTask, bind=True, name="soak.timeout", shared=False, timeout=1)
    def timeout(self: Task, hard: bool, **payload: Any) -> None:
        """Runs past its 1 s timeout; ``hard`` swallows the JobTimeout and is killed after the grace."""
        run = Run(self, "timeout_hard" if hard else "timeout")
        try:
            time.sleep(30)
        except JobTimeout:
            if hard:
                time.sleep(30)  # ignores the timeout: the hard limit must stop it
            run.end("fail")
            raise

    @app.task(base=GuardedTask, bind=True, name="soak.step", shared=False)
    def step(
        self: Task, previous: Any, pipeline: str, index: int, fail: bool, **payload: Any
    ) -> dict[str, Any]:
        """A pipeline step: fails for good when ``fail``, else returns which step it was."""
        run = Run(self, "step")
        result = {"pipeline": pipeline, "step": index}
        if run.already_done:
            run.end("skip")
            return result
        if fail:
            run.end("fail")
            raise StepFailed(f"step {index} of {pipeline} failed: password={payload.get('password')}")
        run.end("ok")
        return result

    def _callback(task: Task, kind: str, pipeline: str, received: dict[str, Any]) -> dict[str, str]:
        run = Run(task, kind)
        run.end("skip" if run.already_done else "ok", callback=(f"{kind}|{pipeline}", received))
        return {"status": "noted"}

    @app.task(base=GuardedTask, bind=True, name="soak.on_then", shared=False)
    def on_then(self: Task, result: dict[str, Any], pipeline: str) -> dict[str, str]:
        return _callback(self, "then", pipeline, {"step": result.get("step")})

    @app.task(base=GuardedTask, bind=True, name="soak.on_catch", shared=False)
    def on_catch(self: Task, error: dict[str, Any], pipeline: str) -> dict[str, str]:
        fields = ("task_id", "task_name", "exception_type", "message", "attempts", "queue")
        return _callback(self, "catch", pipeline, {name: error.get(name) for name in fields})

    @app.task(base=GuardedTask, bind=True, name="soak.on_finally", shared=False)
    def on_finally(self: Task, outcome: dict[str, Any], pipeline: str) -> dict[str, str]:
        return _callback(
            self, "finally", pipeline, {"state": outcome.get("state"), "task_id": outcome.get("task_id")}
        )

    return app


app = build_app(json.loads(os.environ.get("JOBS_SOAK_CONF", "{}")))
