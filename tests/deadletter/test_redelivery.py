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

from collections.abc import Callable, Iterator

import pytest
from celery import Celery

from celery_jobs_ext import DeadLetterQueue, GuardedTask
from tests.harness import PrivateRedis, _redis_server_binary, in_process_worker, missing, unique, wait_for


@pytest.fixture
def state_server() -> Iterator[PrivateRedis]:
    """A shared-state Redis of the test's own, which it may stop and start."""
    binary = _redis_server_binary()
    if binary is None:
        missing("no redis-server binary to run a private shared-state Redis")
    assert binary is not None
    server = PrivateRedis(binary, persistent=True)
    yield server
    server.stop()


def _entries_for(dlq: DeadLetterQueue, task_id: str) -> list[dict[str, object]]:
    return [entry for entry in dlq.list(limit=None) if entry["task_id"] == task_id]


def _claims(app: Celery) -> list[bytes]:
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        return list(client.keys(f"{app.conf.jobs_state_prefix}dlq:*"))


def test_copy_redelivered_after_a_dead_letter_stored_while_the_state_was_down_is_not_stored_again(
    make_app: Callable[..., Celery], state_server: PrivateRedis
) -> None:
    app = make_app(
        jobs_dead_letter_queue=unique("dlq"),
        jobs_state_url=f"{state_server.url}/0",
        task_acks_late=True,
    )
    app._test_queues = [app.conf.jobs_dead_letter_queue]  # type: ignore[attr-defined]
    ran: list[str] = []

    @app.task(base=GuardedTask, bind=True, shared=False, name=unique("tests.declined"))
    def declined(self: GuardedTask) -> None:
        ran.append(str(self.request.id))
        raise ValueError("card declined")

    @app.task(shared=False, name=unique("tests.after"))
    def after() -> str:
        return "ran"

    dlq = DeadLetterQueue(app)
    task_id = unique("declined")
    try:
        with in_process_worker(app, pool="solo"):
            # The first copy fails for good while the shared state is down (as it was, on the
            # same server as the broker, through the soak's Redis restart).
            state_server.halt()
            declined.apply_async(task_id=task_id)
            wait_for(lambda: _entries_for(dlq, task_id), timeout=30, message="the first dead-letter entry")
            state_server.start()
            # Its acknowledgement is lost: the broker hands the message out again.
            declined.apply_async(task_id=task_id, headers={"redelivered": True})
            # The solo pool runs messages one by one: once this one ran, the copy is settled.
            assert after.delay().get(timeout=30) == "ran"
        assert ran == [task_id, task_id]
        entries = _entries_for(dlq, task_id)
        assert len(entries) == 1, f"dead-lettered {len(entries)} times: {entries}"
    finally:
        with app.connection_for_write() as connection:
            client = connection.default_channel.client
            for key in _claims(app):
                client.delete(key)
