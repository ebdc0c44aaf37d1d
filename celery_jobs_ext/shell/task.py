"""The ``jobs.shell`` Celery task: validated at publish and again in the worker.

The only module of :mod:`celery_jobs_ext.shell` that imports Celery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from celery import bootsteps

from celery_jobs_ext.config import ConfigCache, JobsConfig
from celery_jobs_ext.errors import ShellCommandNotAllowed
from celery_jobs_ext.shell.advice import startup_warnings
from celery_jobs_ext.shell.environment import check_environment
from celery_jobs_ext.shell.policy import validate_command
from celery_jobs_ext.shell.runner import finite, run_command
from celery_jobs_ext.shell.sandbox import executables_warnings, startup_report
from celery_jobs_ext.shell.workdir import check_cwd
from celery_jobs_ext.task import GuardedTask

logger = logging.getLogger(__name__)

#: The name ``install(app)`` registers the shell task under.
SHELL_TASK_NAME = "jobs.shell"

_TIMEOUT_SETTING = "jobs_shell_timeout"


def _refuse(message: str) -> ShellCommandNotAllowed:
    return ShellCommandNotAllowed(f"Command refused: {message}")


def _job_timeout(requested: Any, config: JobsConfig) -> float:
    """The timeout a job gets: the one it asks for, never more than ``jobs_shell_timeout``."""
    if requested is None:
        return config.shell_timeout
    if (
        isinstance(requested, bool)
        or not isinstance(requested, (int, float))
        or not finite(requested)
        or requested <= 0
    ):
        raise _refuse(f"timeout must be a finite number of seconds > 0, got {requested!r}")
    return min(float(requested), config.shell_timeout)


def _check_message(
    config: JobsConfig, command: Any, cwd: Any, env: Any, timeout: Any, *, in_worker: bool = False
) -> list[str]:
    """Everything a message chooses, checked the same way in the producer and the worker.

    The worker also checks that ``cwd`` exists and that its real path is listed.
    """
    if not isinstance(command, str):
        raise _refuse(f"jobs.shell takes the command as one string, got {type(command).__name__}")
    argv = validate_command(
        command,
        config.allowed_shell_commands,
        denied_arguments=config.shell_denied_arguments,
        search_path=config.shell_path,
    )
    check_cwd(cwd, config.shell_allowed_cwd, resolve=in_worker)
    if env is not None:
        check_environment(env, config.shell_allowed_env)
    _job_timeout(timeout, config)
    return argv


def _message_arguments(args: Any, kwargs: Any) -> tuple[Any, Any, Any, Any]:
    """``(command, cwd, env, timeout)`` from a call's positional and keyword arguments."""
    if args is not None and not isinstance(args, (list, tuple)):
        raise _refuse(
            f"jobs.shell takes its positional arguments as a list or tuple, got {type(args).__name__}"
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise _refuse(f"jobs.shell takes its keyword arguments as a dict, got {type(kwargs).__name__}")
    args = list(args or ())
    kwargs = dict(kwargs or {})
    names = ("command", "cwd", "env", "timeout")
    if len(args) > len(names):
        raise _refuse(f"jobs.shell takes at most {len(names)} arguments: {', '.join(names)}")
    unknown = set(kwargs) - set(names)
    if unknown:
        raise _refuse(
            f"jobs.shell got unknown arguments {sorted(unknown, key=str)}; it takes {', '.join(names)}"
        )
    values = dict(zip(names[: len(args)], args, strict=True))
    values.update(kwargs)
    if "command" not in values:
        raise _refuse("jobs.shell needs the command as its first argument")
    return values["command"], values.get("cwd"), values.get("env"), values.get("timeout")


class ShellTask(GuardedTask):
    """Runs one allowed program without a shell; validates at publish and in the worker.

    The producer-side check in :meth:`apply_async` means ``jobs_shell.delay("rm -rf /")``
    raises before anything reaches the broker; the worker checks again because a message
    can come from anywhere (``send_task``, another producer, a hand-written message).
    """

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        _check_message(ConfigCache.get(self.app), *_message_arguments(args, kwargs))
        return super().apply_async(args, kwargs, *rest, **options)


class ShellPolicyCheck(bootsteps.StartStopStep):
    """Worker bootstep: log once at start-up what the shell policy allows that can run code,
    and whether commands run in the kernel sandbox (only when the policy allows any)."""

    label = "celery-jobs-ext shell policy"

    def start(self, parent: Any) -> None:
        config = ConfigCache.get(parent.app)
        for warning in startup_warnings(config.allowed_shell_commands):
            logger.warning("jobs.shell: %s", warning)
        if config.allowed_shell_commands:
            is_warning, message = startup_report(config.shell_sandbox)
            (logger.warning if is_warning else logger.info)("jobs.shell: %s", message)
            if config.shell_sandbox != "off":
                for warning in executables_warnings(config.shell_sandbox_executables):
                    logger.warning("jobs.shell: %s", warning)


def register_shell_task(app: Any) -> None:
    """Register ``jobs.shell`` on ``app``; ``install(app)`` calls this once per app.

    The task takes ``command`` (one string), optional ``cwd`` (only a directory
    ``jobs_shell_allowed_cwd`` lists), ``env`` (the child gets only
    these variables plus ``PATH``; names from the allow list only) and ``timeout`` (seconds,
    at most ``jobs_shell_timeout``, which is also the default), and returns
    ``{"returncode", "stdout", "stderr"}``; a non-zero exit raises :class:`ShellCommandFailed`.
    Registered lazily, like any ``@app.task``, so installing never finalizes the app early.
    """

    def shell(
        self: Any,
        command: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, object]:
        config = ConfigCache.get(self.app)
        argv = _check_message(config, command, cwd, env, timeout, in_worker=True)
        mask: Callable[[str], str] | None = None
        if config.mask_secrets:
            from celery_jobs_ext.masking import mask_text

            keys = config.mask_keys

            def mask(text: str) -> str:
                return mask_text(text, keys)

        return run_command(
            argv,
            cwd=cwd,
            env=env if env is not None else {},
            timeout=_job_timeout(timeout, config),
            max_output=config.shell_max_output,
            search_path=config.shell_path,
            allowed_env=config.shell_allowed_env,
            mask=mask,
            sandbox=config.shell_sandbox,
            sandbox_executables=config.shell_sandbox_executables,
            writable_paths=config.shell_writable_paths,
        )

    app.steps["worker"].add(ShellPolicyCheck)
    app.task(shell, base=ShellTask, name=SHELL_TASK_NAME, bind=True, shared=False)


def shell_task(app: Any) -> Any:
    """The ``jobs.shell`` task of ``app``: ``shell_task(app).delay("ls -l /srv")``."""
    from celery_jobs_ext.app import install

    install(app)
    return app.tasks[SHELL_TASK_NAME]
