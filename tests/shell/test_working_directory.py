"""The working directory is closed by default: a message may choose only a listed directory.

A program writes into its working directory (wget URL, git clone, tar x) and reads
configuration there (Makefile, .git/config), so the message's ``cwd`` decides where an allowed
program writes and what the next one loads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery

from celery_jobs_ext.config import JobsConfig
from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_cwd, run_command, shell_task
from celery_jobs_ext.shell.workdir import checked_cwd_entries
from tests.harness import in_process_worker


def test_cwd_is_refused_naming_the_setting_when_none_is_listed() -> None:
    with pytest.raises(ShellCommandNotAllowed, match="jobs_shell_allowed_cwd is empty"):
        check_cwd("/tmp", ())


def test_no_cwd_needs_no_listing() -> None:
    assert check_cwd(None, ()) is None


@pytest.mark.parametrize("cwd", ["/srv/reports", "/srv/repos/app"])
def test_listed_directory_and_one_level_under_a_star_entry_pass(cwd: str) -> None:
    assert check_cwd(cwd, ["/srv/reports", "/srv/repos/*"]) == cwd


@pytest.mark.parametrize(
    "cwd",
    [
        "/srv/reports/sub", "/srv/repos", "/srv/repos/a/b", "/srv/repos/.git", "/srv/reports/../../etc",
        "/srv/./reports", "srv/reports", "//srv/reports", "/srv/reports/", "/tmp",
    ],
)  # fmt: skip
def test_other_directories_and_unnormalised_spellings_are_refused(cwd: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="cwd"):
        check_cwd(cwd, ["/srv/reports", "/srv/repos/*"])


@pytest.mark.parametrize("cwd", [5, b"/tmp", ["/tmp"], "", "/tmp\x00x"])
def test_cwd_of_the_wrong_type_is_refused_clearly(cwd: object) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="cwd must be"):
        check_cwd(cwd, ["/tmp"])


def test_worker_check_refuses_a_symlink_out_of_a_listed_directory(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    (repos / "app").mkdir(parents=True)
    (repos / "escape").symlink_to(tmp_path)
    allowed = [f"{repos}/*"]
    assert check_cwd(f"{repos}/app", allowed, resolve=True) == f"{repos}/app"
    assert check_cwd(f"{repos}/escape", allowed) == f"{repos}/escape"  # the producer sees text only
    with pytest.raises(ShellCommandNotAllowed, match="resolves to"):
        check_cwd(f"{repos}/escape", allowed, resolve=True)
    with pytest.raises(ShellCommandNotAllowed, match="not an existing directory"):
        check_cwd(f"{repos}/missing", allowed, resolve=True)


@pytest.mark.parametrize(
    "entries", ["/srv", ["srv"], ["/srv/../etc"], ["/srv/"], ["/srv/*/x"], [5], ["//srv"]]
)
def test_malformed_allowed_cwd_setting_is_improperly_configured(entries: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_allowed_cwd"):
        checked_cwd_entries(entries)


def test_setting_is_read_into_the_config(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_shell_allowed_cwd=["/srv/repos/*"])
    assert JobsConfig.from_app(app).shell_allowed_cwd == ("/srv/repos/*",)


def test_producer_refuses_an_unlisted_cwd_before_the_broker(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = make_app(jobs_allowed_shell_commands=["ls"])
    with pytest.raises(ShellCommandNotAllowed, match="jobs_shell_allowed_cwd"):
        shell_task(app).apply_async(("ls",), {"cwd": "/tmp"})
    with pytest.raises(ShellCommandNotAllowed, match="jobs_shell_allowed_cwd"):
        shell_task(app).delay("ls", "/tmp")
    assert redis.Redis.from_url(redis_url).llen(app.conf.task_default_queue) == 0


def test_worker_refuses_a_hand_sent_cwd_and_runs_in_a_listed_one(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    listed = tmp_path / "jobs"
    listed.mkdir()
    (listed / "here").write_text("")
    other = tmp_path / "other"
    other.mkdir()
    app = make_app(jobs_allowed_shell_commands=["touch made", "ls"], jobs_shell_allowed_cwd=[str(listed)])
    shell_task(app)
    with in_process_worker(app):
        refused = app.send_task("jobs.shell", args=["touch made"], kwargs={"cwd": str(other)})
        with pytest.raises(ShellCommandNotAllowed, match="not a directory listed"):
            refused.get(timeout=20)
        result = shell_task(app).delay("ls", str(listed)).get(timeout=20)
    assert result["stdout"] == "here\n"
    assert list(other.iterdir()) == []


def test_run_command_refuses_a_cwd_that_is_not_a_str(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cwd must be a directory path"):
        run_command(["/bin/true"], cwd=5, env={}, search_path="/usr/bin:/bin")  # type: ignore[arg-type]


def test_run_command_reports_a_missing_cwd_as_such(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an existing directory"):
        run_command(["/bin/true"], cwd=str(tmp_path / "missing"), env={}, search_path="/usr/bin:/bin")


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (None, "ab", "keyword arguments as a dict"),
        ("ls", None, "positional arguments as a list or tuple"),
        (5, None, "positional arguments as a list or tuple"),
        (["ls"], ["cwd"], "keyword arguments as a dict"),
    ],
)
def test_apply_async_with_odd_argument_types_is_refused_clearly(
    make_app: Callable[..., Celery], args: object, kwargs: object, expected: str
) -> None:
    app = make_app(jobs_allowed_shell_commands=["ls"])
    with pytest.raises(ShellCommandNotAllowed, match=expected):
        shell_task(app).apply_async(args, kwargs)
