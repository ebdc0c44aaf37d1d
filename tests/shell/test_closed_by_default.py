"""Closed by default: nothing runs until programs are listed; '*' is explicit and logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import DEFAULT_SEARCH_PATH, run_command, shell_task, validate_command
from tests.harness import in_process_worker
from tests.shell.helpers import make_programs

WRAPPERS = [
    "env", "nice", "timeout", "stdbuf", "setarch", "linux32", "linux64", "i386", "x86_64",
    "uname26", "nohup", "xargs", "ionice", "chrt", "taskset", "setsid", "flock", "script",
    "unshare", "prlimit", "busybox", "faketime", "ld-linux-x86-64.so.2",
]  # fmt: skip


def test_fresh_app_refuses_every_command_at_publish_naming_the_setting(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = make_app()
    with pytest.raises(ShellCommandNotAllowed, match="jobs_allowed_shell_commands is empty"):
        shell_task(app).delay("echo hi")
    assert redis.Redis.from_url(redis_url).llen(app.conf.task_default_queue) == 0


def test_fresh_app_worker_refuses_a_hand_sent_command_and_it_never_runs(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    app = make_app()
    marker = tmp_path / "marker"
    shell_task(app)
    with in_process_worker(app):
        result = app.send_task("jobs.shell", args=[f"touch {marker}"])
        with pytest.raises(ShellCommandNotAllowed, match="jobs_allowed_shell_commands is empty"):
            result.get(timeout=20)
    assert not marker.exists()


def test_validate_command_with_an_empty_list_refuses_naming_the_setting() -> None:
    with pytest.raises(ShellCommandNotAllowed, match="jobs_allowed_shell_commands is empty"):
        validate_command("ls", [], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)


def test_star_allows_any_program_on_the_search_path() -> None:
    argv = validate_command("uname -s", ["*"], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)
    assert run_command(argv, timeout=10)["returncode"] == 0


def test_worker_with_star_logs_a_warning_once_at_start_up(
    make_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(jobs_allowed_shell_commands=["*"])
    shell = shell_task(app)
    with caplog.at_level(logging.WARNING, logger="celery_jobs_ext.shell"), in_process_worker(app):
        assert shell.delay("echo one").get(timeout=20)["stdout"] == "one\n"
        assert shell.delay("echo two").get(timeout=20)["stdout"] == "two\n"
    warnings = [record for record in caplog.records if "contains '*'" in record.getMessage()]
    assert len(warnings) == 1
    assert "jobs_allowed_shell_commands" in warnings[0].getMessage()


@pytest.mark.parametrize("name", WRAPPERS)
@pytest.mark.parametrize("mode", ["star", "listed"])
def test_wrapper_is_refused_in_every_mode(tmp_path: Path, name: str, mode: str) -> None:
    make_programs(tmp_path, [name])
    allowed = ["*"] if mode == "star" else [name]
    with pytest.raises(ShellCommandNotAllowed, match="runs the program named in its arguments"):
        validate_command(f"{name} sh -c id", allowed, denied_arguments={}, search_path=str(tmp_path))


@pytest.mark.parametrize("target", ["/usr/bin/setarch", "/usr/bin/env", "/usr/bin/nice", "/usr/bin/timeout"])
@pytest.mark.parametrize("mode", ["star", "listed"])
def test_wrapper_under_another_name_through_a_symlink_is_refused(
    tmp_path: Path, target: str, mode: str
) -> None:
    if not os.path.exists(target):
        pytest.skip(f"{target} is not installed")
    (tmp_path / "harmless").symlink_to(target)
    allowed = ["*"] if mode == "star" else ["harmless"]
    with pytest.raises(ShellCommandNotAllowed, match="runs the program named in its arguments"):
        validate_command("harmless sh -c id", allowed, denied_arguments={}, search_path=str(tmp_path))


@pytest.mark.parametrize("command", ["setarch x86_64 touch {m}", "linux64 touch {m}", "x86_64 touch {m}"])
def test_setarch_family_never_runs_a_command_with_star(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(ShellCommandNotAllowed):
        argv = validate_command(
            command.format(m=marker), ["*"], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH
        )
        run_command(argv, timeout=10)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        ("ls", "jobs_allowed_shell_commands"),
        ([3], "jobs_allowed_shell_commands"),
        (["'unterminated"], "jobs_allowed_shell_commands"),
        (["* -l"], "takes no arguments"),
        (["l* -l"], "without wildcards"),
        (["./deploy.sh"], "relative path"),
        (["bin/deploy"], "relative path"),
    ],
)
def test_malformed_allowed_list_is_improperly_configured(allowed: object, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=expected):
        validate_command("ls", allowed, denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["ls; id", "", "touch x", "$(id)"])
def test_empty_list_names_the_setting_whatever_the_command(command: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="jobs_allowed_shell_commands is empty"):
        validate_command(command, [], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)
