"""Job timeouts: a global ``jobs_timeout`` and per-task overrides, honoured on every pool.

A task's timeout comes, first found wins, from the message (``apply_async(timeout=...)``,
carried in the ``jobs_timeout`` header so a worker far away honours it), the task class's
``timeout`` attribute, then the ``jobs_timeout`` setting. 0 means no timeout.

How it is enforced depends on what the pool can do (``docs/timeouts.md`` has the table):

- prefork: at the timeout :class:`JobTimeout` is raised inside the task (Celery's soft limit,
  SIGUSR1), and after the grace the child is killed (the hard limit): the parent can signal
  and kill a child process.
- solo: SIGALRM raises :class:`JobTimeout` in the task, once more after the grace, and a task
  still running past that is failed when it returns: tasks run in the worker's main thread,
  where signals land, but nothing can be killed.
- threads, gevent, eventlet (and solo off the main thread): the elapsed time is checked when
  the task returns; a late task is logged as a warning and failed with :class:`JobTimeout`: a
  thread cannot be interrupted safely, and a signal cannot pick a greenlet.

A timed-out task fails like any other: retried if it has retries left (``autoretry_for``
covering :class:`JobTimeout` or ``SoftTimeLimitExceeded``), otherwise dead-lettered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from celery import bootsteps

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured, JobTimeout
from celery_jobs_ext.headers import TIMEOUT_HEADER

if TYPE_CHECKING:
    from celery import Task as _TaskBase
    from celery.worker.request import Request as _RequestBase
else:
    _TaskBase = object
    _RequestBase = object

__all__ = [
    "TIMEOUT_HEADER",
    "JobTimeout",
    "TimeoutPool",
    "TimeoutRequestMixin",
    "TimeoutTaskMixin",
    "grace_for",
    "task_timeout",
]

logger = logging.getLogger(__name__)


#: How this process's worker runs tasks: "prefork", "solo", "threads", "green", or None
#: outside a worker. Set by :class:`TimeoutPool` before the pool forks, so children inherit it.
_pool_kind: str | None = None


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


def _validate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise ImproperlyConfigured(
            f"{where} = {value!r} is invalid: expected a number of seconds >= 0 (0: no timeout)."
        )
    return value


def task_timeout(task: Any, per_call: Any = None, *, strict: bool = True) -> float:
    """The timeout (seconds, 0 for none) that applies to one run of ``task``.

    Arguments:
        task: the task (a GuardedTask).
        per_call: the value from the message or the ``apply_async`` call, if any.
        strict: raise on a bad ``per_call`` value; otherwise ignore it with a warning
            (a worker must not choke on a message from a foreign producer).

    Raises:
        ImproperlyConfigured: a value is not a number of seconds >= 0.
    """
    if per_call is not None:
        try:
            return _validate(per_call, f"timeout of {task.name}")
        except ImproperlyConfigured:
            if strict:
                raise
            logger.warning(
                "Ignoring header %s=%r on task %s: not a number of seconds",
                TIMEOUT_HEADER,
                per_call,
                task.name,
            )
    attribute = getattr(task, "timeout", None)
    if attribute is not None:
        return _validate(attribute, f"{type(task).__name__}.timeout of {task.name}")
    return float(ConfigCache.get(task.app).timeout)


def grace_for(timeout: float, configured: float) -> float:
    """Seconds between the soft timeout and the hard kill.

    ``jobs_timeout_grace`` capped at the timeout itself (at least 1 s): a 2 s job should
    not get 10 s to clean up, which would make its real limit six times what was asked.
    """
    return float(min(configured, max(1.0, timeout)))


def time_limits(task: Any, timeout: float, limits: Any = None) -> tuple[float | None, float | None]:
    """Celery's ``(hard, soft)`` time limits for a run with ``timeout``.

    Stricter limits the user set through Celery (``time_limit``, ``soft_time_limit``, in the
    message or on the task) are kept.
    """
    hard, soft = (limits or (None, None))[:2] if limits else (None, None)
    hard = hard or getattr(task, "time_limit", None)
    soft = soft or getattr(task, "soft_time_limit", None)
    if not timeout:
        return hard, soft
    grace = grace_for(timeout, ConfigCache.get(task.app).timeout_grace)
    ours_hard = timeout + grace
    return (min(hard, ours_hard) if hard else ours_hard), (min(soft, timeout) if soft else timeout)


class TimeoutTaskMixin(_TaskBase):
    """GuardedTask's timeout hooks (task side): the per-call option and in-task enforcement."""

    #: Seconds this task may run; None: ``jobs_timeout``. Overridden per call with
    #: ``apply_async(timeout=...)``.
    timeout: float | None = None

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        """Carry ``timeout=`` in the message: a header, plus Celery's own time limits.

        The header is what our workers read on any pool; the limits make Celery's prefork
        pool enforce it even before our request class sees it. Retries keep both (Celery
        copies headers and limits into the retried message).
        """
        per_call = options.pop("timeout", None)
        if per_call is not None:
            seconds = task_timeout(self, per_call)
            headers = dict(options.get("headers") or {})
            headers[TIMEOUT_HEADER] = seconds
            options["headers"] = headers
            if seconds:
                hard, soft = time_limits(
                    self, seconds, (options.get("time_limit"), options.get("soft_time_limit"))
                )
                options["time_limit"], options["soft_time_limit"] = hard, soft
        return super().apply_async(args, kwargs, *rest, **options)

    def _jobs_run_timed(self, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the task's body under its timeout, the way this worker's pool allows.

        Called from the task's ``run`` (see :class:`~celery_jobs_ext.task.GuardedTask`), so
        an ``autoretry_for`` covering :class:`JobTimeout` retries a timed-out run as it
        would any exception of the body.
        """
        request = self.request
        if request.called_directly or request.is_eager:
            return fun(*args, **kwargs)
        timeout = task_timeout(self, request.get(TIMEOUT_HEADER), strict=False)
        if not timeout:
            return fun(*args, **kwargs)
        kind = _enforcement()
        if kind == "prefork":
            # A soft limit stricter than ours is the user's own: leave it to Celery.
            _, soft = (request.timelimit or (None, None))[:2] if request.timelimit else (None, None)
            soft = soft or self.soft_time_limit
            if soft and soft < timeout:
                return fun(*args, **kwargs)
            global _soft_job
            if not _soft_handler_installed:
                _install_soft_handler()
            outer, _soft_job = _soft_job, (self.name, timeout)
            try:
                return fun(*args, **kwargs)
            finally:
                _soft_job = outer
        started = time.monotonic()
        grace = 0.0
        if kind == "alarm":
            grace = grace_for(timeout, ConfigCache.get(self.app).timeout_grace)
            with _alarm(self.name, timeout, grace):
                result = fun(*args, **kwargs)
        else:
            result = fun(*args, **kwargs)
        elapsed = time.monotonic() - started
        if elapsed <= timeout + grace:
            return result
        logger.warning(
            "Job %s[%s] returned after %.1f s, past its timeout of %s s: the %s pool cannot "
            "interrupt a running task, so it is marked as timed out",
            self.name,
            request.id,
            elapsed,
            _format_seconds(timeout),
            _pool_kind or "current",
        )
        raise JobTimeout(self.name, timeout)


def _enforcement() -> str:
    """How a task in this thread can be stopped: "prefork", "alarm" or "check"."""
    kind = _pool_kind
    if kind == "prefork" and hasattr(signal, "SIGUSR1"):
        return "prefork"
    if (
        kind == "solo"
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    ):
        return "alarm"
    return "check"


#: The job whose soft timeout SIGUSR1 raises in this pool process: (name, seconds), or None.
_soft_job: tuple[str, float] | None = None
#: Whether this process's SIGUSR1 handler is ours (reset in a forked child).
_soft_handler_installed = False
#: The handler ours replaced (billiard's, which raises a bare SoftTimeLimitExceeded).
_previous_soft_handler: Any = None


def _install_soft_handler() -> None:
    """Make Celery's soft-limit signal raise JobTimeout while a guarded job runs.

    Installed once per pool process, on its first guarded job with a timeout, rather
    than swapped around every job (two system calls a task). While no guarded job runs,
    the signal goes to the handler that was there (billiard's), so plain tasks' soft
    limits behave as in plain Celery.
    """
    global _soft_handler_installed, _previous_soft_handler
    previous = signal.signal(signal.SIGUSR1, _on_soft_timeout)
    if previous is not _on_soft_timeout:  # ours already, inherited by a fork: keep what it wraps
        _previous_soft_handler = previous
    _soft_handler_installed = True


def _on_soft_timeout(signum: int, frame: Any) -> None:
    # Every signal while the job runs raises: billiard sends a second one at worker shutdown
    # to a job that caught the first, and that must still read as this job's timeout. (A
    # signal landing between the body's return and the reset below would leave the job
    # marked until the next guarded job; a plain task's soft limit would then raise a
    # JobTimeout, which is still a SoftTimeLimitExceeded.)
    job = _soft_job
    if job is not None:
        raise JobTimeout(*job)
    if callable(_previous_soft_handler):
        _previous_soft_handler(signum, frame)


def _forget_soft_handler() -> None:
    global _soft_handler_installed, _soft_job
    _soft_handler_installed = False
    _soft_job = None


if hasattr(os, "register_at_fork"):
    # billiard installs its own handler in each new pool process: ours goes on top again.
    os.register_at_fork(after_in_child=_forget_soft_handler)


@contextlib.contextmanager
def _alarm(name: str, timeout: float, grace: float) -> Iterator[None]:
    """SIGALRM raises JobTimeout at the timeout, and once more after the grace."""
    fired = 0

    def raise_timeout(signum: int, frame: Any) -> None:
        nonlocal fired
        fired += 1
        if fired == 1 and grace > 0:
            signal.setitimer(signal.ITIMER_REAL, grace)
        raise JobTimeout(name, timeout)

    previous = signal.signal(signal.SIGALRM, raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TimeoutRequestMixin(_RequestBase):
    """GuardedTask's timeout hooks on the worker side: the time limits the pool enforces.

    Celery's request reads ``time_limits`` when it hands the task to the pool, so
    setting them here makes prefork signal and kill at our timeout, whichever way it
    was configured (header, task attribute, setting).
    """

    #: The timeout (seconds) of this run; 0: none. Read by the dead-letter hooks.
    jobs_timeout: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        task = self.task
        try:
            timeout = task_timeout(task, self._request_dict.get(TIMEOUT_HEADER), strict=False)
        except ImproperlyConfigured:
            logger.exception("Task %s[%s]: invalid timeout, running without one", task.name, self.id)
            return
        if timeout:
            self.jobs_timeout = timeout
            limits: Any = getattr(self, "time_limits", None)
            self.time_limits = time_limits(task, timeout, limits)


def pool_kind(pool_cls: Any) -> str:
    """Name the kind of pool ``pool_cls`` is: "prefork", "solo", "threads", "green" or "other"."""
    from celery.concurrency import get_implementation

    if isinstance(pool_cls, str):
        pool_cls = get_implementation(pool_cls)
    if getattr(pool_cls, "is_green", False):
        return "green"
    from celery.concurrency.prefork import TaskPool as PreforkPool
    from celery.concurrency.solo import TaskPool as SoloPool
    from celery.concurrency.thread import TaskPool as ThreadPool

    if isinstance(pool_cls, type):
        if issubclass(pool_cls, PreforkPool):
            return "prefork"
        if issubclass(pool_cls, SoloPool):
            return "solo"
        if issubclass(pool_cls, ThreadPool):
            return "threads"
    return "other"


class TimeoutPool(bootsteps.Step):
    """Worker bootstep: record which pool runs the tasks, so a task knows how it can be stopped.

    Runs while the worker is built, before the pool starts (and forks), so prefork
    children inherit the value.
    """

    label = "celery-jobs-ext timeouts"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        global _pool_kind
        _pool_kind = pool_kind(parent.pool_cls)
        super().__init__(parent, **kwargs)
