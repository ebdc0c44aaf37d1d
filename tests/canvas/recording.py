"""Callback tasks that record what they receive, for tests that run a real in-process worker.

The worker runs in a thread of the test process, so a callback can append what it got (after
the real broker's JSON round trip) to a list the test reads.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery, Task

from celery_jobs_ext import GuardedTask
from tests.harness import wait_for


class Calls:
    """What each labelled callback received, and on which queue it ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[str, Any, str | None]] = []

    def add(self, label: str, payload: Any, queue: str | None) -> None:
        with self._lock:
            self._calls.append((label, payload, queue))

    def of(self, label: str) -> list[Any]:
        """The payloads ``label`` received, in order."""
        with self._lock:
            return [payload for name, payload, _ in self._calls if name == label]

    def queues_of(self, label: str) -> list[str | None]:
        with self._lock:
            return [queue for name, _, queue in self._calls if name == label]

    def wait(self, label: str, count: int = 1, timeout: float = 20) -> list[Any]:
        """Wait until ``label`` was called ``count`` times; return its payloads."""
        wait_for(lambda: len(self.of(label)) >= count, timeout=timeout, message=f"{count} call(s) of {label}")
        return self.of(label)


class Recorders:
    """A GuardedTask and a plain task that record ``(label, payload, queue)``, plus a barrier.

    ``settle(queue)`` sends a no-argument call through ``queue`` and waits for it: on a solo
    worker, anything already published on that queue has run by then, so "never called"
    can be asserted without sleeping.
    """

    def __init__(self, app: Celery, calls: Calls) -> None:
        self.calls = calls

        @app.task(base=GuardedTask, bind=True, shared=False, name="tests.canvas.record")
        def record(self: Task, payload: Any, label: str) -> None:
            calls.add(label, payload, self.request.delivery_info.get("routing_key"))

        @app.task(bind=True, shared=False, name="tests.canvas.record_plain")
        def record_plain(self: Task, payload: Any, label: str) -> None:
            calls.add(label, payload, self.request.delivery_info.get("routing_key"))

        @app.task(shared=False, name="tests.canvas.barrier")
        def barrier(token: str) -> None:
            calls.add("barrier", token, None)

        self.record = record
        self.record_plain = record_plain
        self._barrier = barrier
        self._settled = 0

    def settle(self, queue: str | None = None) -> None:
        self._settled += 1
        token = f"settle-{self._settled}"
        self._barrier.apply_async((token,), queue=queue)
        wait_for(lambda: token in self.calls.of("barrier"), timeout=20, message=f"barrier {token}")
