"""Dead-letter queue: tasks that failed for good land in a real broker queue (in progress)."""

from __future__ import annotations


class DeadLetterTaskMixin:
    """GuardedTask's dead-letter hooks (task side)."""


class DeadLetterRequestMixin:
    """GuardedTask's dead-letter hooks (worker request side, in the worker's main process)."""
