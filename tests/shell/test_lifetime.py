"""Lifetime: a default timeout, and no process outlives the command, even one that left its session."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache
from celery_jobs_ext.errors import (
    ImproperlyConfigured,
    ShellCommandFailed,
    ShellCommandNotAllowed,
    ShellCommandTimedOut,
)
from celery_jobs_ext.shell import run_command, shell_task
from tests.harness import WorkerProcess, in_process_worker, worker_conf
from tests.shell.helpers import assert_dead, make_programs, program_paths, read_pid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux only")

SETSID_SLEEPER = (
    "import subprocess, sys\n"
    "quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}\n"
    "child = subprocess.Popen(['setsid', 'sleep', '300'], **quiet)\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
)
DOUBLE_FORK_DAEMON = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "        os.closerange(0, 3)\n"
    "        time.sleep(300)\n"
    "    os._exit(0)\n"
    "os.wait()\n"
)


def sandbox_for(out: Path) -> dict[str, object]:
    """The kernel sandbox of these commands: they start setsid and sleep, and write a pid file."""
    return {"sandbox_executables": program_paths("setsid", "sleep"), "writable_paths": [str(out)]}


def test_a_setsid_sleeper_started_by_the_command_is_dead_after_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    result = run_command(
        [sys.executable, "-c", SETSID_SLEEPER, str(pid_file)], timeout=30, **sandbox_for(tmp_path)
    )
    assert result["returncode"] == 0
    assert_dead(read_pid(pid_file))


def test_a_double_forked_daemon_is_dead_after_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    run_command(
        [sys.executable, "-c", DOUBLE_FORK_DAEMON, str(pid_file)], timeout=30, **sandbox_for(tmp_path)
    )
    assert_dead(read_pid(pid_file))


def test_a_setsid_sleeper_is_dead_after_a_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = SETSID_SLEEPER + "import time; time.sleep(300)\n"
    with pytest.raises(ShellCommandTimedOut):
        run_command([sys.executable, "-c", script, str(pid_file)], timeout=2, **sandbox_for(tmp_path))
    assert_dead(read_pid(pid_file))


def test_a_daemon_started_through_the_task_in_a_worker_is_dead_after_it(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    pid_file = tmp_path / "out" / "pid"
    bin_dir = make_programs(
        tmp_path / "bin",
        ["start-daemon"],
        f"#!/bin/sh\nsetsid sleep 300 >/dev/null 2>&1 &\necho $! > {pid_file}\n",
    )
    app = make_app(
        jobs_allowed_shell_commands=["start-daemon"],
        jobs_shell_path=f"{bin_dir}:/usr/bin:/bin",
        jobs_shell_sandbox_executables=program_paths("setsid", "sleep"),
        jobs_shell_writable_paths=[str(pid_file.parent)],
    )
    shell = shell_task(app)
    with in_process_worker(app):
        assert shell.delay("start-daemon").get(timeout=30)["returncode"] == 0
    assert_dead(read_pid(pid_file))


def test_shell_timeout_defaults_to_300_seconds(make_app: Callable[..., Celery]) -> None:
    assert ConfigCache.get(make_app()).shell_timeout == 300.0


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0, -1, "300", True, None])
def test_shell_timeout_that_is_not_a_finite_positive_number_is_refused_naming_the_key(
    make_app: Callable[..., Celery], value: object
) -> None:
    app = make_app(jobs_shell_timeout=value)
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_timeout"):
        ConfigCache.get(app)


def test_a_message_cannot_ask_for_more_than_the_configured_timeout(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_allowed_shell_commands=["sleep"], jobs_shell_timeout=1)
    shell = shell_task(app)
    with in_process_worker(app):
        result = app.send_task("jobs.shell", args=["sleep 60"], kwargs={"timeout": 3600})
        with pytest.raises(ShellCommandTimedOut) as caught:
            result.get(timeout=30)
    assert caught.value.timeout == 1.0
    for bad in (float("inf"), float("nan"), 0, -5, "10"):
        with pytest.raises(ShellCommandNotAllowed, match="timeout must be"):
            shell.delay("sleep 1", timeout=bad)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 0, -1])
def test_run_command_refuses_a_timeout_that_never_fires(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be"):
        run_command(["true"], timeout=timeout)


def test_a_daemon_started_in_a_prefork_pool_child_is_dead_and_the_worker_keeps_working(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    pid_file = tmp_path / "out" / "pid"
    bin_dir = make_programs(
        tmp_path / "bin",
        ["start-daemon"],
        f"#!/bin/sh\nsetsid sleep 300 >/dev/null 2>&1 &\necho $! > {pid_file}\n",
    )
    app = make_app(
        jobs_allowed_shell_commands=["start-daemon", "echo"],
        jobs_shell_path=f"{bin_dir}:/usr/bin:/bin",
        jobs_shell_sandbox_executables=program_paths("setsid", "sleep"),
        jobs_shell_writable_paths=[str(pid_file.parent)],
    )
    shell = shell_task(app)
    with WorkerProcess(worker_conf(app), queues=app.conf.task_default_queue, concurrency=1) as worker:
        worker.wait_ready()
        assert shell.delay("start-daemon").get(timeout=60)["returncode"] == 0
        assert_dead(read_pid(pid_file))
        assert shell.delay("echo still here").get(timeout=60)["stdout"] == "still here\n"


def test_a_command_that_kills_its_helper_is_still_killed(tmp_path: Path) -> None:
    # Without the kernel sandbox: inside it, the command cannot signal its helper at all
    # (tests/shell/test_sandbox.py).
    pid_file = tmp_path / "pid"
    script = (
        "import os, sys, time\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "os.kill(os.getppid(), 9)\n"
        "time.sleep(300)\n"
    )
    with pytest.raises(ShellCommandFailed):
        run_command([sys.executable, "-c", script, str(pid_file)], timeout=30, sandbox="off")
    assert_dead(read_pid(pid_file))


def test_a_timeout_too_big_for_a_float_is_refused_cleanly(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_allowed_shell_commands=["sleep"])
    with pytest.raises(ShellCommandNotAllowed, match="timeout must be"):
        shell_task(app).delay("sleep 1", timeout=10**400)
    with pytest.raises(ValueError, match="timeout must be"):
        run_command(["true"], timeout=10**400)
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_timeout"):
        ConfigCache.get(make_app(jobs_shell_timeout=10**400))
