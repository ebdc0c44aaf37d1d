"""Helpers of the shell tests: stand-in programs, process liveness."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from tests.harness import wait_for


def make_programs(directory: Path, names: Iterable[str], body: str = "#!/bin/false\n") -> Path:
    """Executable files named ``names`` in ``directory`` (validation never runs them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        program = directory / name
        program.write_text(body)
        program.chmod(0o755)
    return directory


def is_dead(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def read_pid(path: Path) -> int:
    """The pid a command wrote to ``path`` (waits for the file, with a deadline)."""
    wait_for(lambda: path.exists() and path.read_text().strip(), message=f"a pid in {path}")
    return int(path.read_text().strip())


def assert_dead(pid: int) -> None:
    """Fail unless ``pid`` is dead within the deadline; kill it (ours) if it is not."""
    try:
        wait_for(lambda: is_dead(pid), timeout=10, message=f"process {pid} to be dead")
    except AssertionError:
        os.kill(pid, 9)
        raise


def program_paths(*names: str) -> list[str]:
    """Absolute paths of installed programs, for ``jobs_shell_sandbox_executables``."""
    found = [shutil.which(name) for name in names]
    assert all(found), f"{names} must be installed"
    return [path for path in found if path]


def is_refused(command: str, allowed: list[str], search_path: str) -> bool:
    """Whether ``validate_command`` refuses ``command`` under ``allowed`` (no denied arguments)."""
    from celery_jobs_ext.errors import ShellCommandNotAllowed
    from celery_jobs_ext.shell import validate_command

    try:
        validate_command(command, allowed, denied_arguments={}, search_path=search_path)
    except ShellCommandNotAllowed:
        return True
    return False


def bare(command: str) -> list[str]:
    """The allowed list that names ``command``'s program alone."""
    return [command.split()[0]]
