"""The package's one error hierarchy.

Every error about the extension's work (a setting, the shared state, a refused command,
the dead-letter queue, a timeout) subclasses :class:`JobsError`, so ``except JobsError``
catches all of it, and each message names the setting, task, queue or command involved.
A wrong argument to a function raises ``ValueError``/``TypeError``, as Python does.
"""

from __future__ import annotations


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
