"""The package's one error hierarchy.

Every error about the extension's work (a setting, the shared state, a refused command,
the dead-letter queue, a timeout) subclasses :class:`JobsError`, so ``except JobsError``
catches all of it, and each message names the setting, task, queue or command involved.
A wrong argument to a function raises ``ValueError``/``TypeError``, as Python does.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded


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


# Errors that travel (pickled, in result backends, in canvas error descriptions) keep the
# module they were first defined in as their name, where they stay importable: a worker or
# reader of another version still finds the class, and a stored ``exception_type`` keeps its value.
ChainingError.__module__ = "celery_jobs_ext.canvas"
RateLimitExceeded.__module__ = "celery_jobs_ext.ratelimit"
JobTimeout.__module__ = "celery_jobs_ext.timeouts"
