"""The jobs.shell task on a real worker: allowed commands run, refused ones never do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery

from celery_jobs_ext.shell import ShellCommandFailed, ShellCommandNotAllowed, shell_task
from tests.harness import in_process_worker


def test_an_allowed_command_runs_in_the_worker_and_returns_its_output(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app(jobs_allowed_shell_commands=["echo"])
    shell = shell_task(app)
    with in_process_worker(app):
        result = shell.delay("echo 'hello world'").get(timeout=20)
    assert result == {"returncode": 0, "stdout": "hello world\n", "stderr": ""}


def test_a_refused_command_raises_at_publish_and_never_reaches_the_broker(
    make_app: Callable[..., Celery], redis_url: str, tmp_path: Path
) -> None:
    app = make_app(jobs_allowed_shell_commands=["ls"])
    marker = tmp_path / "marker"
    with pytest.raises(ShellCommandNotAllowed, match="command chaining"):
        shell_task(app).delay(f"ls; touch {marker}")
    with pytest.raises(ShellCommandNotAllowed, match="touch"):
        shell_task(app).delay(f"touch {marker}")
    # Nothing was published: no worker runs here, so the queue's length is the proof (that a
    # hand-crafted message never runs is the next test's, with a worker).
    assert redis.Redis.from_url(redis_url).llen(app.conf.task_default_queue) == 0


def test_the_worker_refuses_a_hand_crafted_message_and_the_command_never_runs(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    app = make_app(jobs_allowed_shell_commands=["ls"])
    marker = tmp_path / "marker"
    shell_task(app)
    with in_process_worker(app):
        # send_task bypasses the producer-side check, as any other producer could.
        result = app.send_task("jobs.shell", args=[f"touch {marker}"])
        with pytest.raises(ShellCommandNotAllowed, match=r"not in jobs_allowed_shell_commands|touch"):
            result.get(timeout=20)
        chained = app.send_task("jobs.shell", args=[f"ls && touch {marker}"])
        with pytest.raises(ShellCommandNotAllowed):
            chained.get(timeout=20)
    assert not marker.exists()


def test_a_failing_command_raises_shell_command_failed_with_its_code(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_allowed_shell_commands=["ls"])
    shell = shell_task(app)
    with in_process_worker(app):
        result = shell.delay("ls /definitely/not/here")
        with pytest.raises(ShellCommandFailed) as error:
            result.get(timeout=20)
    assert error.value.returncode != 0
    assert "/definitely/not/here" in str(error.value)
