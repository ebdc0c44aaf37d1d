"""``celery -A tests.workerapp jobs-dlq stats|list|replay|purge`` as real subprocesses."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from celery import Celery

from celery_jobs_ext import DeadLetterQueue, GuardedTask, install
from tests.deadletter.test_deadletter import wait_for_entries
from tests.harness import in_process_worker, unique
from tests.operator.runner import conf_of, run_celery


def jobs_dlq(
    app: Celery, *args: str, stdin: str | None = None, **conf: Any
) -> subprocess.CompletedProcess[str]:
    """``celery -A tests.workerapp jobs-dlq ARGS…`` through the suite's one command runner."""
    return run_celery(
        conf_of(app, result_backend=app.conf.result_backend, **conf), "jobs-dlq", *args, stdin=stdin
    )


def queue_length(app: Celery, queue: str) -> int:
    with app.connection_for_write() as connection:
        return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)


def test_stats_list_replay_and_purge_from_the_command_line(dlq_app: Callable[..., Celery]) -> None:
    app = dlq_app()
    secret = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"

    @app.task(base=GuardedTask, shared=False, name=unique("tests.cli_fails"))
    def cli_fails(n: int, api_key: str) -> None:
        raise ValueError(f"charge {n} refused for key {api_key}")

    dlq = DeadLetterQueue(app)
    with in_process_worker(app, pool="threads"):
        ids = [cli_fails.delay(n, api_key=secret).id for n in range(3)]
        wait_for_entries(dlq, 3)

    stats = jobs_dlq(app, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {"total": 3, "by_queue": {app.conf.task_default_queue: 3}}

    listed = jobs_dlq(app, "list", "--json", "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [entry["task_id"] for entry in entries] == ids[::-1][:2]
    assert secret not in listed.stdout and "***API_KEY***" in entries[0]["kwargs"]
    text = jobs_dlq(app, "list")
    assert f"[{ids[0]}]" in text.stdout and "reason: ValueError" in text.stdout
    assert secret not in text.stdout

    replayed = jobs_dlq(app, "replay", "--task-id", ids[1], "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"replayed": [ids[1]]}
    assert queue_length(app, app.conf.task_default_queue) == 1  # back on its queue, no worker to run it
    missing = jobs_dlq(app, "replay", "--task-id", ids[1])
    assert missing.returncode == 2 and "is not in dead-letter queue" in missing.stderr

    declined = jobs_dlq(app, "purge", stdin="n\n")
    assert declined.returncode == 1 and "Delete 2 task(s)" in declined.stderr
    assert dlq.stats()["total"] == 2
    purged = jobs_dlq(app, "purge", "--yes")
    assert purged.returncode == 0 and "Purged 2 task(s)" in purged.stdout
    assert dlq.stats() == {"total": 0, "by_queue": {}}


def test_command_without_the_setting_is_a_config_error_naming_it(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = install(make_app())
    result = jobs_dlq(app, "stats")
    assert result.returncode == 78  # EX_CONFIG, not a usage error
    assert "jobs_dead_letter_queue is not set" in result.stderr
    assert "Usage:" not in result.stderr


def test_unreachable_broker_exits_unavailable(make_app: Callable[..., Celery], redis_url: str) -> None:
    app = install(make_app(jobs_dead_letter_queue="dlq"))
    result = jobs_dlq(app, "list", broker_url="redis://127.0.0.1:1/0", jobs_state_url=redis_url)
    assert result.returncode == 69, result.stderr
    assert "is unreachable" in result.stderr
