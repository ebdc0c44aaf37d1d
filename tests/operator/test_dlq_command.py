"""``celery jobs-dlq`` replay and purge behave like Celery's own destructive commands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery
from kombu import Queue

from celery_jobs_ext import DeadLetterQueue
from tests.harness import unique
from tests.operator.runner import invoke, strict_json


@pytest.fixture
def app(make_app: Callable[..., Celery], redis_url: str) -> Celery:
    dlq = unique("dlq")
    app = make_app(jobs_dead_letter_queue=dlq, jobs_state_url=redis_url)
    app._test_queues = [dlq]  # type: ignore[attr-defined]
    return app


def fill(app: Celery, count: int) -> list[str]:
    """Dead-letter ``count`` real task messages of the app's default queue (through the public ``store``)."""
    queue = app.conf.task_default_queue
    ids = [app.send_task("tests.never_runs", queue=queue).id for _ in range(count)]
    dlq = DeadLetterQueue(app)
    with app.connection_for_write() as connection:
        bound = Queue(queue, routing_key=queue)(connection.default_channel)
        for _ in range(count):
            message = bound.get(no_ack=False)
            assert message is not None
            assert dlq.store(message, reason="test", attempts=1)
            message.ack()
    return ids


def test_purge_with_nothing_to_delete_does_not_ask(app: Celery) -> None:
    result = invoke(app, "jobs-dlq", "purge")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Are you sure" not in result.stderr and "Delete" not in result.stdout + result.stderr
    assert "Nothing to purge" in result.stdout
    assert strict_json(invoke(app, "jobs-dlq", "purge", "--json").stdout) == {"purged": 0}


def test_purge_asks_on_stderr_and_takes_force_like_celery_purge(app: Celery) -> None:
    fill(app, 2)
    declined = invoke(app, "jobs-dlq", "purge", "--json", input="n\n")
    assert declined.exit_code == 1
    assert "Delete 2 task(s)" in declined.stderr and "-f option" in declined.stderr
    assert declined.stdout == ""  # stdout stays clean for `--json | python -m json.tool`
    assert DeadLetterQueue(app).stats()["total"] == 2

    purged = invoke(app, "jobs-dlq", "purge", "-f", "--json")
    assert purged.exit_code == 0, purged.stderr
    assert strict_json(purged.stdout) == {"purged": 2}
    fill(app, 1)
    assert invoke(app, "jobs-dlq", "purge", "--yes").exit_code == 0  # the old spelling still works
    assert DeadLetterQueue(app).stats()["total"] == 0


def test_replay_without_a_selector_asks_first_or_needs_all(app: Celery) -> None:
    ids = fill(app, 3)
    declined = invoke(app, "jobs-dlq", "replay", input="n\n")
    assert declined.exit_code == 1 and "Replay 3 task(s)" in declined.stderr
    assert DeadLetterQueue(app).stats()["total"] == 3

    conflicting = invoke(app, "jobs-dlq", "replay", "--all", "--task-id", ids[0])
    assert conflicting.exit_code == 2 and "conflict" in conflicting.stderr

    replayed = invoke(app, "jobs-dlq", "replay", "--all", "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert strict_json(replayed.stdout) == {"replayed": ids}
    assert "Are you sure" not in replayed.stderr


@pytest.mark.parametrize("mode", [[], ["--json"], ["-j"]])
def test_replay_of_an_unknown_task_id_fails_in_every_output_mode(app: Celery, mode: list[str]) -> None:
    fill(app, 1)
    result = invoke(app, "jobs-dlq", "replay", "--task-id", "no-such-task", *mode)
    assert result.exit_code == 2, result.stdout
    assert "'no-such-task' is not in dead-letter queue" in result.stderr
    assert result.stdout == ""
    assert DeadLetterQueue(app).stats()["total"] == 1


def test_long_replays_and_purges_report_progress_on_stderr(app: Celery) -> None:
    queue = app.conf.task_default_queue
    fill(app, 150)
    replayed = invoke(app, "jobs-dlq", "replay", "--queue", queue, "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert len(strict_json(replayed.stdout)["replayed"]) == 150
    assert "jobs-dlq: replaying 150 task(s)..." in replayed.stderr
    assert "jobs-dlq: replaying 100/150" in replayed.stderr

    fill(app, 120)
    purged = invoke(app, "jobs-dlq", "purge", "-f", "--queue", queue)
    assert purged.exit_code == 0, purged.stderr
    assert "Purged 120 task(s)" in purged.stdout
    assert "jobs-dlq: purging 100/120" in purged.stderr
