"""A task running when the worker's RabbitMQ connection drops (docs/reliability.md).

With ``acks_late`` the running task cannot be acknowledged on the dead connection, and
RabbitMQ hands its message out again at once. Unless Celery cancels the running copy
(``worker_cancel_long_running_tasks_on_connection_loss``), both copies run to success:
the full soak saw it once (``ran_to_success_twice``). The worker warns at start-up when
acks_late GuardedTasks meet an AMQP broker without that setting; with it, the task ends
with one success. Real ``celery worker`` subprocesses on a RabbitMQ virtual host of the
test's own, so closing its connections touches nobody else.
"""

from __future__ import annotations

import json

import pytest
import redis

from tests.harness import WorkerProcess, unique, wait_for
from tests.soak.harness import RabbitVhost

WARNING = "worker_cancel_long_running_tasks_on_connection_loss = True"


@pytest.mark.parametrize("cancel", [False, True], ids=["celery-default", "cancel-on-connection-loss"])
def test_task_running_when_the_amqp_connection_drops_succeeds_once_only_with_cancel_on_connection_loss(
    cancel: bool, amqp_url: str, redis_url: str
) -> None:
    vhost = RabbitVhost(amqp_url)
    ledger = redis.Redis.from_url(redis_url)
    key = unique("connection-loss")
    queue = unique("q")
    conf = {
        "broker_url": vhost.url,
        "result_backend": redis_url,
        "task_default_queue": queue,
        "jobs_state_url": redis_url,
        "jobs_state_prefix": f"{key}:",
        "worker_cancel_long_running_tasks_on_connection_loss": cancel,
        "broker_connection_retry_on_startup": True,
    }
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": redis_url}
    try:
        with WorkerProcess(env, queues=queue, concurrency=2) as worker:
            worker.wait_ready()
            from tests.workerapp import app as worker_app

            worker_app.conf.broker_url = vhost.url
            with worker_app.connection_for_write() as connection:
                worker_app.send_task("tests.record_run", (key, 3.0), queue=queue, connection=connection)
            wait_for(lambda: ledger.llen(key) >= 1, timeout=30, message="the task started")
            vhost.close_all_connections()

            def runs() -> list[str]:
                return [json.loads(entry)[0] for entry in ledger.lrange(key, 0, -1)]

            # Every copy the broker handed out has been acknowledged: nothing runs any more.
            wait_for(
                lambda: "end" in runs() and vhost.messages([queue]) == 0,
                timeout=60,
                message="the task's message acknowledged after a run to the end",
            )
            if cancel:
                assert runs() == ["start", "start", "end"]
                assert WARNING not in worker.output()
            else:
                assert runs() == ["start", "start", "end", "end"]
                assert WARNING in worker.output()
    finally:
        ledger.delete(key)
        vhost.delete()
