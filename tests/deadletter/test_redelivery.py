"""A redelivered task never gets a second outcome, whatever the shared state lost (issue #20).

On a Redis broker, a failure for good is claimed where its entry lives: one atomic script on
the broker writes the claim and the entry together, so a restart that loses one loses the
other too, and a state that is down or forgot its keys cannot let a redelivered copy be
dead-lettered again. The interleavings are driven step by step: real in-process worker
(solo pool, ``acks_late``), the test Redis as broker, and for the shared state a private
``redis-server`` the test stops and starts. A copy published again with the same task id
is what the broker hands out when the first copy's acknowledgement was lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from celery_jobs_ext import DeadLetterQueue, GuardedTask
from tests.harness import (
    PrivateRedis,
    WorkerProcess,
    in_process_worker,
    unique,
    wait_for,
)


@pytest.fixture
def state_server(private_redis: Callable[..., PrivateRedis]) -> PrivateRedis:
    """A shared-state Redis of the test's own, which it may stop and start."""
    return private_redis(persistent=True)


def _entries_for(dlq: DeadLetterQueue, task_id: str) -> list[dict[str, object]]:
    return [entry for entry in dlq.list(limit=None) if entry["task_id"] == task_id]


def _claims(app: Celery) -> list[bytes]:
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        return list(client.keys(f"{app.conf.jobs_state_prefix}dlq:*"))


class Scenario:
    """An app on the test Redis (broker) with its shared state on ``state_server``, and its tasks.

    ``declined`` fails for good on its first run; on a later run it does what ``then`` says
    (``fail`` or ``succeed``). ``first`` does the opposite first: it succeeds, then fails.
    """

    def __init__(
        self, make_app: Callable[..., Celery], state_server: PrivateRedis, broker: str | None = None
    ) -> None:
        self.app = app = make_app(
            broker=broker,
            jobs_dead_letter_queue=unique("dlq"),
            jobs_state_url=f"{state_server.url}/0",
            task_acks_late=True,
        )
        app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]
        self.dlq = DeadLetterQueue(app)
        self.ran: list[str] = []
        self.then = "fail"
        ran = self.ran

        @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.declined"))
        def declined(task: GuardedTask) -> str:
            ran.append(str(task.request.id))
            if len(ran) == 1 or self.then == "fail":
                raise ValueError("card declined")
            return "charged"

        @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.charged"))
        def charged(task: GuardedTask) -> str:
            ran.append(str(task.request.id))
            if len(ran) == 1:
                return "charged"
            raise ValueError("card declined")

        @app.task(shared=False, name=unique("tests.after"))
        def after() -> str:
            return "ran"

        self.declined, self.charged, self.after = declined, charged, after

    def redeliver(self, task: Any, task_id: str) -> None:
        """The broker hands the message out again (its acknowledgement was lost); wait till it is settled."""
        task.apply_async(task_id=task_id, headers={"redelivered": True})
        # The solo pool runs messages one by one: once this one ran, the copy is settled.
        assert self.after.delay().get(timeout=30) == "ran"

    def entries(self, task_id: str) -> list[dict[str, object]]:
        return _entries_for(self.dlq, task_id)

    def clean(self) -> None:
        with self.app.connection_for_write() as connection:
            client = connection.default_channel.client
            for key in _claims(self.app):
                client.delete(key)


@pytest.fixture
def scenario(make_app: Callable[..., Celery], state_server: PrivateRedis) -> Iterator[Scenario]:
    """The scenario on a Redis broker, where the claim lives with the entries."""
    built = Scenario(make_app, state_server)
    yield built
    built.clean()


@pytest.fixture
def any_broker_scenario(
    make_app: Callable[..., Celery], state_server: PrivateRedis, broker: str
) -> Iterator[Scenario]:
    """The scenario once per broker (the shared state's claim on RabbitMQ)."""
    built = Scenario(make_app, state_server, broker)
    yield built
    if broker.startswith("redis"):
        built.clean()


def test_copy_redelivered_after_a_dead_letter_stored_while_the_state_was_down_is_not_stored_again(
    scenario: Scenario, state_server: PrivateRedis
) -> None:
    task_id = unique("declined")
    with in_process_worker(scenario.app, pool="solo"):
        # The first copy fails for good while the shared state is down (as it was, on the
        # same server as the broker, through the soak's Redis restart).
        state_server.halt()
        scenario.declined.apply_async(task_id=task_id)
        wait_for(lambda: scenario.entries(task_id), timeout=30, message="the first dead-letter entry")
        state_server.start()
        scenario.redeliver(scenario.declined, task_id)
    entries = scenario.entries(task_id)
    assert len(entries) == 1, f"dead-lettered {len(entries)} times: {entries}"


def test_copy_redelivered_after_the_state_lost_the_dead_letter_claim_is_not_stored_again(
    scenario: Scenario, state_server: PrivateRedis
) -> None:
    task_id = unique("declined")
    with in_process_worker(scenario.app, pool="solo"):
        scenario.declined.apply_async(task_id=task_id)
        wait_for(lambda: scenario.entries(task_id), timeout=30, message="the first dead-letter entry")
        # The state loses what it wrote last (a restart of a Redis that had not yet written
        # it to disk, a failover to a replica that had not received it).
        redis.Redis.from_url(state_server.url).flushall()
        scenario.redeliver(scenario.declined, task_id)
    entries = scenario.entries(task_id)
    assert len(entries) == 1, f"dead-lettered {len(entries)} times: {entries}"


def test_copy_redelivered_after_a_dead_letter_is_not_run_again_so_it_cannot_also_succeed(
    any_broker_scenario: Scenario,
) -> None:
    scenario = any_broker_scenario
    scenario.then = "succeed"
    task_id = unique("declined")
    with in_process_worker(scenario.app, pool="solo"):
        scenario.declined.apply_async(task_id=task_id)
        wait_for(lambda: scenario.entries(task_id), timeout=30, message="the first dead-letter entry")
        scenario.redeliver(scenario.declined, task_id)
    assert scenario.ran == [task_id]
    assert len(scenario.entries(task_id)) == 1
    assert scenario.app.AsyncResult(task_id).state == "FAILURE"


def test_copy_redelivered_after_a_success_is_not_run_again_so_it_cannot_be_dead_lettered(
    any_broker_scenario: Scenario,
) -> None:
    scenario = any_broker_scenario
    task_id = unique("charged")
    with in_process_worker(scenario.app, pool="solo"):
        assert scenario.charged.apply_async(task_id=task_id).get(timeout=30) == "charged"
        scenario.redeliver(scenario.charged, task_id)
    assert scenario.ran == [task_id]
    assert scenario.entries(task_id) == []
    assert scenario.app.AsyncResult(task_id).state == "SUCCESS"


#: How long the broker's Redis stays down: the fault itself (the soak's is 2 s).
OUTAGE_SECONDS = 2.0


def test_tasks_failing_while_their_redis_broker_restarts_are_each_dead_lettered_exactly_once(
    redis_url: str, private_redis: Callable[..., PrivateRedis]
) -> None:
    """The soak's double outcome, focused: real prefork worker, broker and state on one Redis.

    Busy tasks fail for good while the Redis (broker and state, persistent, as in the soak)
    is down. Before the fix, the claim in the state failed, the publish retried through the
    outage and stored the entry anyway, the worker exited (upstream) before acknowledging,
    and the message came back after the visibility timeout, failed again and was stored a
    second time.
    """
    server = private_redis(persistent=True)
    ledger = redis.Redis.from_url(redis_url)
    ledger_key = unique("ledger")
    dlq = unique("dlq")
    conf = {
        "broker_url": f"{server.url}/0",
        "result_backend": redis_url,
        "task_default_queue": unique("q"),
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry_policy": {
            "max_retries": 20,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "broker_transport_options": {
            "visibility_timeout": 5,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        "jobs_state_url": f"{server.url}/0",
        "jobs_state_prefix": f"{ledger_key}:",
        "jobs_dead_letter_queue": dlq,
    }
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": redis_url}
    app = Celery(unique("publisher"))
    app.conf.update(conf)
    broker = redis.Redis.from_url(f"{server.url}/0")
    workers = [WorkerProcess(env, queues=conf["task_default_queue"], concurrency=2)]
    try:
        workers[0].wait_ready()
        ids = [app.send_task("tests.dlq.fails_after", (ledger_key, 1.0)).id for _ in range(6)]
        wait_for(lambda: ledger.llen(ledger_key) >= 2, timeout=30, message="two tasks busy")
        server.halt()  # the two busy tasks fail while it is down
        time.sleep(OUTAGE_SECONDS)
        server.start()

        def settled() -> bool:
            for worker in list(workers):
                if worker.process.poll() is not None and worker is workers[-1]:
                    # Celery 5.7 workers exit at a broker restart (docs/reliability.md): restart it.
                    workers.append(WorkerProcess(env, queues=conf["task_default_queue"], concurrency=2))
                    workers[-1].wait_ready()
            try:
                stored = {json.loads(raw)["headers"]["id"] for raw in broker.lrange(dlq, 0, -1)}
                pending = broker.llen(conf["task_default_queue"]) + broker.hlen("unacked")
            except redis.ConnectionError:
                return False
            return stored >= set(ids) and pending == 0

        wait_for(settled, timeout=90, interval=0.2, message="every task dead-lettered, nothing pending")
        entries = Counter(json.loads(raw)["headers"]["id"] for raw in broker.lrange(dlq, 0, -1))
        assert {task_id: entries[task_id] for task_id in ids} == dict.fromkeys(ids, 1), "\n".join(
            worker.output() for worker in workers
        )
    finally:
        for worker in workers:
            worker.stop()
            with contextlib.suppress(OSError):
                os.unlink(worker.log.name)
        ledger.delete(ledger_key)
        server.stop()
