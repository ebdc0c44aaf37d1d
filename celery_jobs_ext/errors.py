"""The package's one error hierarchy.

Every error about the extension's work (a setting, the shared state, a refused command,
the dead-letter queue, a timeout) subclasses :class:`JobsError`, so ``except JobsError``
catches all of it, and each message names the setting, task, queue or command involved.
A wrong argument to a function raises ``ValueError``/``TypeError``, as Python does.
"""

from __future__ import annotations

import shlex
import signal
from collections.abc import Sequence
from typing import Any

# billiard defines it; celery.exceptions re-exports it. Importing it from billiard keeps
# this module (and so shell validation and mask_text) free of Celery.
from billiard.exceptions import SoftTimeLimitExceeded


class JobsError(Exception):
    """Base class of every error raised by celery-jobs-ext."""


class ImproperlyConfigured(JobsError):
    """A ``jobs_*`` setting has a wrong type or value; the message names the setting."""


class StateUnavailable(JobsError):
    """The shared state store (``jobs_state_url``) cannot be reached or written."""


class BrokerUnavailable(JobsError):
    """The broker cannot be reached, or does not answer in time; the message names it (no password)."""


class InvalidRate(JobsError, ValueError):
    """A rate limit a worker cannot use (not a number, not finite, out of bounds, not ASCII digits).

    Also a ``ValueError``: a bad argument to ``RateLimiter.set_limit`` or ``parse_rate``.
    """


class DeadLetterError(JobsError):
    """A dead-letter queue operation cannot be done; the message names the queue and what to do."""


class ChainingError(JobsError):
    """A fluent chaining call got something it cannot use; the message says what to pass."""


class RateLimitExceeded(JobsError):
    """A queue is over its limit; ``retry_after`` says how many seconds until a slot frees up."""

    def __init__(self, queue: str, limit: float, retry_after: float) -> None:
        self.queue = queue
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(queue, limit, retry_after)

    def __str__(self) -> str:
        return (
            f"Queue {self.queue!r} is over its rate limit of {self.limit:g} jobs per minute; "
            f"next slot in {self.retry_after:.3f} s"
        )

    def __reduce__(self) -> tuple[type[RateLimitExceeded], tuple[str, float, float]]:
        return (type(self), (self.queue, self.limit, self.retry_after))


class JobTimeout(JobsError, SoftTimeLimitExceeded):
    """A job ran past its timeout.

    Also a ``SoftTimeLimitExceeded``, so code written for Celery's soft time limit
    (``except SoftTimeLimitExceeded``) handles it unchanged.
    """

    def __init__(self, task_name: str = "", seconds: float | None = None) -> None:
        # One argument is a finished message: that is how Celery's result backend and
        # pickling rebuild an exception, from its args.
        if seconds is None:
            super().__init__(task_name)
            self.task_name: str | None = None
        else:
            super().__init__(f"Job '{task_name}' exceeded timeout of {seconds:g} seconds")
            self.task_name = task_name
        self.seconds = seconds

    def __str__(self) -> str:
        # SoftTimeLimitExceeded's own __str__ shows the args tuple; show the message.
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        if self.seconds is None or self.task_name is None:
            return (type(self), tuple(self.args))
        return (type(self), (self.task_name, self.seconds))


class ShellCommandNotAllowed(JobsError):
    """A command was refused before anything ran; the message names the part refused and why."""


class ShellCommandFailed(JobsError):
    """The program exited non-zero or could not start; carries the code and the end of stderr.

    ``args`` holds exactly the constructor's arguments, so the error survives pickling and
    Celery's JSON round trip of exceptions (which rebuilds it as ``cls(*args)``).
    """

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str = "") -> None:
        self.argv: tuple[str, ...] = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(list(self.argv), returncode, stderr_tail)

    @property
    def command(self) -> str:
        """The argv as one shell-quoted string, for messages and logs."""
        return shlex.join(self.argv)

    def __reduce__(self) -> tuple[type[ShellCommandFailed], tuple[object, ...]]:
        return (type(self), self.args)

    def __str__(self) -> str:
        return f"Command {self.command!r} {self._outcome()}{self._stderr_summary()}"

    def _outcome(self) -> str:
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"was killed by {name} (exit code {self.returncode})"
        return f"exited with code {self.returncode}"

    def _stderr_summary(self) -> str:
        tail = self.stderr_tail.rstrip()
        return f"; stderr ends with: {tail}" if tail else "; stderr was empty"


class ShellCommandTimedOut(ShellCommandFailed):
    """The program outlived its timeout; it and every process it started were killed."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stderr_tail: str = "", timeout: float = 0.0
    ) -> None:
        self.timeout = timeout
        super().__init__(argv, returncode, stderr_tail)
        self.args = (list(self.argv), returncode, stderr_tail, timeout)

    def _outcome(self) -> str:
        return f"timed out after {self.timeout:g} s and was killed with every process it started"


# Errors that travel (pickled, in result backends, in canvas error descriptions) keep the
# module they were first defined in as their name, where they stay importable: a worker or
# reader of another version still finds the class, and a stored ``exception_type`` keeps its value.
ChainingError.__module__ = "celery_jobs_ext.canvas"
RateLimitExceeded.__module__ = "celery_jobs_ext.ratelimit"
JobTimeout.__module__ = "celery_jobs_ext.timeouts"
