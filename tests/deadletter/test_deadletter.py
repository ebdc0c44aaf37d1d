"""Tasks that fail for good land in the dead-letter queue once, with their metadata, on both brokers.

Real in-process workers (Celery's ``start_worker``, threads pool) on real Redis and RabbitMQ.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, Task
from celery.exceptions import Reject

from celery_jobs_ext import DeadLetterQueue, GuardedTask, install
from celery_jobs_ext.state import get_state
from tests.harness import in_process_worker, unique, wait_for

SECRETS = Path(__file__).parent.parent / "data" / "secrets_true_positives.json"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def runs(app: Celery, key: str) -> int:
    return get_state(app).get_counters([f"runs:{key}"])[0]


def count_run(app: Celery, key: str) -> int:
    return get_state(app).incr(f"runs:{key}")


def fixed(app: Celery, key: str) -> bool:
    """Whether the test has "fixed the cause" of a failure (a flag in the shared state)."""
    return get_state(app).get_counters([f"fixed:{key}"])[0] > 0


def fix(app: Celery, key: str) -> None:
    get_state(app).incr(f"fixed:{key}")


def wait_for_success(app: Celery, task_id: str, timeout: float = 20) -> Any:
    """The result of a task that succeeds after a replay (a fresh AsyncResult each poll:
    one that saw FAILURE caches it)."""

    def succeeded() -> Any:
        result = app.AsyncResult(task_id)
        return result.state == "SUCCESS" and (result.result,)

    return wait_for(succeeded, timeout=timeout, interval=0.05, message=f"task {task_id} to succeed")[0]


def wait_for_entries(dlq: DeadLetterQueue, count: int, timeout: float = 30) -> None:
    wait_for(
        lambda: dlq.stats()["total"] >= count, timeout=timeout, interval=0.05, message=f"{count} DLQ entries"
    )


def test_task_failing_past_max_retries_is_dead_lettered_once_after_three_attempts(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()
    queue = app.conf.task_default_queue

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.always_fails"), max_retries=2)
    def always_fails(self: Task, order: int) -> None:
        count_run(app, self.request.id)
        raise self.retry(exc=ValueError(f"order {order} cannot be processed"))

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = always_fails.delay(42)
        wait_for_entries(dlq, 1)
        with pytest.raises(ValueError, match="order 42"):
            result.get(timeout=10, propagate=True)
    # The worker is stopped: nothing more can arrive.
    assert runs(app, result.id) == 3
    assert dlq.stats() == {"total": 1, "by_queue": {queue: 1}}
    [entry] = dlq.list()
    assert entry["task_id"] == result.id
    assert entry["task"] == always_fails.name
    assert entry["reason"] == "Max retries exceeded"
    assert entry["attempts"] == 3
    assert entry["original_queue"] == queue
    assert ISO_UTC.match(entry["timestamp"]), entry["timestamp"]
    assert entry["exception"] == "ValueError: order 42 cannot be processed"
    assert "Traceback" in entry["traceback"] and "ValueError" in entry["traceback"]
    assert entry["args"] == "(42,)"
    assert entry["dlq_id"] and entry["replayed_from"] is None


def test_exception_that_is_not_retried_is_dead_lettered_at_once(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.breaks"), max_retries=5)
    def breaks(self: Task) -> None:
        count_run(app, self.request.id)
        raise KeyError("missing column")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = breaks.delay()
        wait_for_entries(dlq, 1)
    assert runs(app, result.id) == 1
    [entry] = dlq.list()
    assert (entry["reason"], entry["attempts"]) == ("KeyError", 1)
    assert entry["exception"] == "KeyError: 'missing column'"
    assert dlq.stats()["total"] == 1


def test_retry_is_not_a_failure_for_good_and_a_later_success_leaves_nothing(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.flaky"), max_retries=3)
    def flaky(self: Task) -> str:
        if count_run(app, self.request.id) < 3:
            raise self.retry(exc=ConnectionError("try later"))
        return "done"

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        assert flaky.delay().get(timeout=20) == "done"
    assert dlq.stats() == {"total": 0, "by_queue": {}}


def test_autoretry_giving_up_is_dead_lettered_as_max_retries_exceeded(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()

    @app.task(
        base=GuardedTask,
        bind=True,
        shared=False,
        name=unique("tests.auto"),
        autoretry_for=(TimeoutError,),
        max_retries=1,
    )
    def auto(self: Task) -> None:
        count_run(app, self.request.id)
        raise TimeoutError("upstream slow")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = auto.delay()
        wait_for_entries(dlq, 1)
    assert runs(app, result.id) == 2
    [entry] = dlq.list()
    assert (entry["reason"], entry["attempts"]) == ("Max retries exceeded", 2)


def test_rejected_without_requeue_is_dead_lettered(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, shared=False, name=unique("tests.rejects"))
    def rejects() -> None:
        raise Reject("bad payload", requeue=False)

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        rejects.delay()
        wait_for_entries(dlq, 1)
    assert dlq.list()[0]["reason"] == "Rejected"


def test_plain_tasks_and_apps_without_a_dead_letter_queue_store_nothing(
    dlq_app: Callable[..., Celery], make_app: Callable[..., Celery], broker: str, redis_url: str
) -> None:
    app = install(dlq_app())  # a GuardedTask elsewhere in the app would do the same

    @app.task(shared=False, name=unique("tests.plain_fails"))
    def plain_fails() -> None:
        raise ValueError("plain")

    with in_process_worker(app, pool="threads"):
        result = plain_fails.delay()
        wait_for(result.ready, timeout=10)
    assert DeadLetterQueue(app).stats()["total"] == 0

    without = make_app(broker=broker, jobs_state_url=redis_url)

    @without.task(base=GuardedTask, shared=False, name=unique("tests.guarded_fails"))
    def guarded_fails() -> None:
        raise ValueError("no dlq configured")

    with in_process_worker(without, pool="threads"):
        result = guarded_fails.delay()
        wait_for(result.ready, timeout=10)
    assert result.state == "FAILURE"


def test_replay_runs_the_task_again_on_its_original_queue_as_a_fresh_attempt(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.needs_fix"), max_retries=1)
    def needs_fix(self: Task, value: int) -> dict[str, Any]:
        if not fixed(app, "needs_fix"):
            raise self.retry(exc=RuntimeError("dependency down"))
        return {
            "value": value,
            "retries": self.request.retries,
            "replayed_from": self.request.get("dlq_replayed_from"),
            "queue": self.request.delivery_info.get("routing_key"),
        }

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = needs_fix.delay(7)
        wait_for_entries(dlq, 1)
        [entry] = dlq.list()
        fix(app, "needs_fix")
        assert dlq.replay(task_id=result.id) == [result.id]
        outcome = wait_for_success(app, result.id)
    assert outcome == {
        "value": 7,
        "retries": 0,
        "replayed_from": entry["dlq_id"],
        "queue": app.conf.task_default_queue,
    }
    assert dlq.stats() == {"total": 0, "by_queue": {}}


def test_replayed_task_that_fails_again_is_dead_lettered_again(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.still_broken"))
    def still_broken(self: Task) -> None:
        count_run(app, self.request.id)
        raise OSError("still broken")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        result = still_broken.delay()
        wait_for_entries(dlq, 1)
        [first] = dlq.list()
        assert dlq.replay() == [result.id]
        wait_for(lambda: runs(app, result.id) == 2 and dlq.stats()["total"] == 1, timeout=20)
    [second] = dlq.list()
    assert second["task_id"] == result.id
    assert second["replayed_from"] == first["dlq_id"]
    assert second["dlq_id"] != first["dlq_id"]


def test_list_is_newest_first_filtered_limited_and_does_not_consume(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()
    other_queue = unique("q-other")
    app._test_queues.append(other_queue)  # type: ignore[attr-defined]

    @app.task(base=GuardedTask, shared=False, name=unique("tests.fails_n"))
    def fails_n(n: int) -> None:
        raise ValueError(n)

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="solo", queues=[app.conf.task_default_queue, other_queue]):
        ids = []
        for n in range(3):
            ids.append(fails_n.delay(n).id)
            wait_for_entries(dlq, n + 1)
        ids.append(fails_n.apply_async((3,), queue=other_queue).id)
        wait_for_entries(dlq, 4)
    first = dlq.list()
    assert [entry["task_id"] for entry in first] == ids[::-1]
    assert dlq.list() == first
    assert [entry["task_id"] for entry in dlq.list(limit=2)] == ids[::-1][:2]
    assert [entry["task_id"] for entry in dlq.list(queue=other_queue)] == [ids[3]]
    assert dlq.stats() == {
        "total": 4,
        "by_queue": dict(sorted({app.conf.task_default_queue: 3, other_queue: 1}.items())),
    }


def test_purge_by_original_queue_then_all_empties_the_queue_and_its_counts(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()
    other_queue = unique("q-other")
    app._test_queues.append(other_queue)  # type: ignore[attr-defined]

    @app.task(base=GuardedTask, shared=False, name=unique("tests.fails"))
    def fails() -> None:
        raise ValueError("x")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads", queues=[app.conf.task_default_queue, other_queue]):
        for _ in range(3):
            fails.delay()
        for _ in range(2):
            fails.apply_async(queue=other_queue)
        wait_for_entries(dlq, 5)
    assert dlq.purge(queue=other_queue) == 2
    assert dlq.stats() == {"total": 3, "by_queue": {app.conf.task_default_queue: 3}}
    assert dlq.purge() == 3
    assert dlq.stats() == {"total": 0, "by_queue": {}}
    assert dlq.list() == []


def test_stats_recount_from_the_broker_when_the_shared_counts_are_lost(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()

    @app.task(base=GuardedTask, shared=False, name=unique("tests.fails"))
    def fails() -> None:
        raise ValueError("x")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        for _ in range(3):
            fails.delay()
        wait_for_entries(dlq, 3)
    get_state(app).delete([f"dlq:{dlq.name}:queues"])
    assert dlq.stats() == {"total": 3, "by_queue": {app.conf.task_default_queue: 3}}
    assert get_state(app).hgetall([f"dlq:{dlq.name}:queues"]) == [{app.conf.task_default_queue: 3}]


def raw_messages(app: Celery, queue: str) -> list[tuple[dict[str, Any], bytes]]:
    """(headers, body) of every message in ``queue``, read with kombu directly and given back."""
    with app.connection_for_write() as connection:
        channel = connection.channel()
        if connection.transport.driver_type == "redis":
            items = [json.loads(raw) for raw in channel.client.lrange(queue, 0, -1)]
            return [(item["headers"], base64.b64decode(item["body"])) for item in items]
        messages = []
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            messages.append(channel.message_to_python(message))
        found = [
            (dict(message.headers), body.encode() if isinstance(body := message.body, str) else bytes(body))
            for message in messages
        ]
        channel.close()  # unacknowledged: RabbitMQ puts them back
        return found


def test_no_planted_secret_reaches_the_entry_headers_or_the_listing_but_the_body_keeps_it(
    dlq_app: Callable[..., Celery],
) -> None:
    app = dlq_app()
    cases = json.loads(SECRETS.read_text())["cases"]
    secrets = [case for case in cases if len(case["secret"]) >= 16][::6]

    @app.task(base=GuardedTask, shared=False, name=unique("tests.leaks"))
    def leaks(text: str, **kwargs: Any) -> None:
        raise RuntimeError(f"could not process {text}")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        for case in secrets:
            leaks.delay(case["text"], password=case["secret"])
        wait_for_entries(dlq, len(secrets))
    listing = json.dumps(dlq.list(limit=None))
    raw = raw_messages(app, dlq.name)
    assert len(raw) == len(secrets)
    headers_text = json.dumps([headers for headers, _ in raw])
    bodies = b"".join(body for _, body in raw).decode()
    for case in secrets:
        assert case["secret"] not in listing, case["label"]
        assert case["secret"] not in headers_text, case["label"]
        assert json.dumps(case["secret"])[1:-1] in bodies, case["label"]  # replay needs the real value


def test_store_takes_a_kombu_message_and_stores_each_failure_once(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()
    queue = app.conf.task_default_queue
    task_id = app.send_task("tests.never_run", args=(1,), kwargs={"token": "s3cr3t-t0ken-value"}).id
    dlq = DeadLetterQueue(app)
    with app.connection_for_write() as connection:
        consumer_queue = app.amqp.queues[queue](connection.default_channel)
        message = wait_for(lambda: consumer_queue.get(no_ack=False), timeout=10, message="the message")
        # A redelivered message that fails again (same task, same generation) is not stored twice.
        assert dlq.store(message, "Given up by hand", 2, exception="RuntimeError: nope") is True
        assert dlq.store(message, "Given up by hand", 2, exception="RuntimeError: nope") is False
        message.ack()
    assert dlq.stats() == {"total": 1, "by_queue": {queue: 1}}
    [entry] = dlq.list()
    assert (entry["task_id"], entry["task"], entry["reason"], entry["attempts"]) == (
        task_id,
        "tests.never_run",
        "Given up by hand",
        2,
    )
    assert "s3cr3t-t0ken-value" not in entry["kwargs"]
