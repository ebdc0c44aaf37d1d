"""Each run's outcome is decided once and heard by the listeners in order, on real workers.

In-process workers (``start_worker``) on the test Redis, with a request class whose
listener list ends with a recorder, so a test sees exactly what the dead-letter queue
and the metrics heard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, Task
from celery.exceptions import Ignore, Reject

from celery_jobs_ext import DeadLetterQueue, GuardedTask
from celery_jobs_ext.outcome import (
    FAILED,
    IGNORED,
    REJECTED,
    RETRYING,
    SUCCEEDED,
    OutcomeListener,
    RunOutcome,
)
from celery_jobs_ext.state import get_state
from celery_jobs_ext.task import GuardedRequest
from tests.harness import in_process_worker, unique, wait_for

_lock = threading.Lock()
#: task id -> the outcomes told for it, one per run, in order.
HEARD: dict[str, list[RunOutcome]] = {}
#: (listener name, task id, kind) in the order the listeners heard them.
ORDER: list[tuple[str, str, str]] = []
#: Task ids whose first failure the refusing listener refuses (the message is kept).
REFUSE_ONCE: set[str] = set()


class Recorder(OutcomeListener):
    def __init__(self, name: str) -> None:
        self.name = name

    def after_outcome(self, request: Any, outcome: RunOutcome) -> None:
        with _lock:
            ORDER.append((self.name, request.id, outcome.kind))
            if self.name == "last":
                HEARD.setdefault(request.id, []).append(outcome)


class RefusesOnce(OutcomeListener):
    """Refuses the acknowledgement of a failure once per listed task: the run is requeued."""

    def before_fail(self, request: Any, outcome: RunOutcome, holding_message: bool) -> bool:
        with _lock:
            if request.id in REFUSE_ONCE:
                REFUSE_ONCE.discard(request.id)
                return False
        return True


class RecordingRequest(GuardedRequest):
    outcome_listeners = (
        Recorder("first"),
        RefusesOnce(),
        *GuardedRequest.outcome_listeners,
        Recorder("last"),
    )


class RecordedTask(GuardedTask):
    Request = RecordingRequest


def heard(task_id: str, runs: int = 1, timeout: float = 20) -> list[RunOutcome]:
    """The outcomes told for ``task_id`` once there are ``runs`` of them."""

    def told() -> list[RunOutcome] | None:
        with _lock:
            outcomes = list(HEARD.get(task_id, ()))
        return outcomes if len(outcomes) >= runs else None

    outcomes = wait_for(told, timeout=timeout, message=f"{runs} outcome(s) of {task_id}")
    return outcomes


@pytest.fixture
def app(make_app: Callable[..., Celery]) -> Celery:
    dlq = unique("dlq")
    app = make_app(jobs_dead_letter_queue=dlq, jobs_retry_strategy="fixed", jobs_retry_base=0)
    app._test_queues = [dlq]  # type: ignore[attr-defined]
    return app


def test_each_way_a_run_can_end_is_classified_once_per_run(app: Celery) -> None:
    @app.task(base=RecordedTask, shared=False, name=unique("tests.ok"))
    def ok() -> int:
        return 1

    @app.task(base=RecordedTask, shared=False, name=unique("tests.broken"))
    def broken() -> None:
        raise KeyError("missing")

    @app.task(base=RecordedTask, shared=False, bind=True, name=unique("tests.flaky"), max_retries=2)
    def flaky(self: Task) -> None:
        raise self.retry(exc=RuntimeError("still down"))

    @app.task(base=RecordedTask, shared=False, name=unique("tests.ignored"))
    def ignored() -> None:
        raise Ignore()

    @app.task(base=RecordedTask, shared=False, bind=True, name=unique("tests.bounced"), acks_late=True)
    def bounced(self: Task) -> str:
        if get_state(app).incr(f"runs:{self.request.id}") == 1:
            raise Reject("not yet", requeue=True)
        return "second time"

    @app.task(base=RecordedTask, shared=False, name=unique("tests.refused"), acks_late=True)
    def refused() -> None:
        raise Reject("never", requeue=False)

    with in_process_worker(app, pool="threads"):
        results = {
            "ok": ok.delay(),
            "broken": broken.delay(),
            "flaky": flaky.delay(),
            "ignored": ignored.delay(),
            "bounced": bounced.delay(),
            "refused": refused.delay(),
        }
        outcomes = {
            "ok": heard(results["ok"].id),
            "broken": heard(results["broken"].id),
            "flaky": heard(results["flaky"].id, runs=3),
            "ignored": heard(results["ignored"].id),
            "bounced": heard(results["bounced"].id, runs=2),
            "refused": heard(results["refused"].id),
        }
        wait_for(lambda: DeadLetterQueue(app).stats()["total"] == 3, message="3 dead-letter entries")

    kinds = {name: [(o.kind, o.reason) for o in told] for name, told in outcomes.items()}
    assert kinds == {
        "ok": [(SUCCEEDED, "")],
        "broken": [(FAILED, "KeyError")],
        "flaky": [(RETRYING, ""), (RETRYING, ""), (FAILED, "Max retries exceeded")],
        "ignored": [(IGNORED, "")],
        "bounced": [(REJECTED, ""), (SUCCEEDED, "")],
        "refused": [(FAILED, "Rejected")],
    }
    assert outcomes["flaky"][-1].attempts == 3
    # The dead-letter queue stored exactly the failures the classifier decided, with its reasons.
    stored = {entry["task_id"]: entry["reason"] for entry in DeadLetterQueue(app).list()}
    assert stored == {
        results["broken"].id: "KeyError",
        results["flaky"].id: "Max retries exceeded",
        results["refused"].id: "Rejected",
    }


def test_a_run_past_its_timeout_is_a_timed_out_failure_for_good(app: Celery) -> None:
    @app.task(base=RecordedTask, shared=False, name=unique("tests.slow"), timeout=0.2)
    def slow() -> str:
        time.sleep(0.6)
        return "late"

    with in_process_worker(app, pool="threads"):
        result = slow.delay()
        [outcome] = heard(result.id)
        wait_for(lambda: DeadLetterQueue(app).stats()["total"] == 1, message="the dead-letter entry")
    assert (outcome.kind, outcome.timed_out, outcome.reason) == (FAILED, True, "Timed out after 0.2 s")
    [entry] = DeadLetterQueue(app).list()
    assert entry["reason"] == outcome.reason


def test_listeners_hear_each_outcome_in_list_order(app: Celery) -> None:
    @app.task(base=RecordedTask, shared=False, name=unique("tests.ok"))
    def ok() -> int:
        return 1

    @app.task(base=RecordedTask, shared=False, name=unique("tests.broken"))
    def broken() -> None:
        raise ValueError("no")

    with in_process_worker(app, pool="threads"):
        ids = [ok.delay().id, broken.delay().id]
        for task_id in ids:
            heard(task_id)
    with _lock:
        order = {
            task_id: [(name, kind) for name, heard_id, kind in ORDER if heard_id == task_id]
            for task_id in ids
        }
    assert order == {
        ids[0]: [("first", SUCCEEDED), ("last", SUCCEEDED)],
        ids[1]: [("first", FAILED), ("last", FAILED)],
    }


def test_a_listener_that_refuses_a_failure_keeps_the_message_for_another_run(app: Celery) -> None:
    @app.task(base=RecordedTask, shared=False, bind=True, name=unique("tests.broken"), acks_late=True)
    def broken(self: Task) -> None:
        get_state(app).incr(f"runs:{self.request.id}")
        raise ValueError("no")

    task_id = unique("id")
    with _lock:
        REFUSE_ONCE.add(task_id)
    with in_process_worker(app, pool="threads"):
        broken.apply_async(task_id=task_id)
        first, second = heard(task_id, runs=2)
        wait_for(lambda: DeadLetterQueue(app).stats()["total"] == 1, message="the dead-letter entry")
    # Refused before the dead-letter listener was asked: requeued, not stored; the second run is.
    assert (first.kind, second.kind, second.reason) == (REJECTED, FAILED, "ValueError")
    assert get_state(app).get_counters([f"runs:{task_id}"])[0] == 2
    assert [entry["task_id"] for entry in DeadLetterQueue(app).list()] == [task_id]
