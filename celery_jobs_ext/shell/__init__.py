"""The shell task: run one allowed program, parsed to argv, without a shell; closed by default.

Modules, one concern each:

- :mod:`.syntax`: the command string to words, refusing shell syntax (parsing).
- :mod:`.patterns`: entries of ``jobs_allowed_shell_commands``: names, ``"*"``, sudoers-style
  argument patterns.
- :mod:`.policy`: :func:`validate_command`: which program, resolved where, with which
  arguments; wrappers refused in every mode.
- :mod:`.rules`: per-program argument rules (defence in depth behind the allowed list).
- :mod:`.environment`: the child's environment, from an allow list.
- :mod:`.advice`: the worker's start-up warnings about entries that can run code.
- :mod:`.runner` and :mod:`.reaper`: :func:`run_command`, under a helper that leaves no
  descendant behind.
- :mod:`.task`: the ``jobs.shell`` Celery task (the only module that imports Celery, loaded
  on first use of its names).

The threat model and the full policy are in docs/security.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from celery_jobs_ext.errors import ShellCommandFailed, ShellCommandNotAllowed, ShellCommandTimedOut
from celery_jobs_ext.shell.environment import DEFAULT_ALLOWED_ENVIRONMENT, check_environment
from celery_jobs_ext.shell.patterns import AllowedEntry, parse_entry
from celery_jobs_ext.shell.policy import DEFAULT_SEARCH_PATH, REFUSED_PROGRAMS, validate_command
from celery_jobs_ext.shell.rules.table import DENIED_ARGUMENTS
from celery_jobs_ext.shell.runner import STDERR_TAIL_BYTES, run_command
from celery_jobs_ext.shell.syntax import MAX_COMMAND_LENGTH
from celery_jobs_ext.shell.workdir import check_cwd

if TYPE_CHECKING:
    from celery_jobs_ext.shell.task import SHELL_TASK_NAME, ShellTask, register_shell_task, shell_task

_TASK_EXPORTS = frozenset({"SHELL_TASK_NAME", "ShellTask", "register_shell_task", "shell_task"})

__all__ = [
    "DEFAULT_ALLOWED_ENVIRONMENT",
    "DEFAULT_SEARCH_PATH",
    "DENIED_ARGUMENTS",
    "MAX_COMMAND_LENGTH",
    "REFUSED_PROGRAMS",
    "SHELL_TASK_NAME",
    "STDERR_TAIL_BYTES",
    "AllowedEntry",
    "ShellCommandFailed",
    "ShellCommandNotAllowed",
    "ShellCommandTimedOut",
    "ShellTask",
    "check_cwd",
    "check_environment",
    "parse_entry",
    "register_shell_task",
    "run_command",
    "shell_task",
    "validate_command",
]


def __getattr__(name: str) -> Any:
    # The Celery task loads on first use, so validating a command never imports Celery.
    if name in _TASK_EXPORTS:
        value = getattr(importlib.import_module("celery_jobs_ext.shell.task"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'celery_jobs_ext.shell' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _TASK_EXPORTS)
