"""Job timeouts: a global ``jobs_timeout`` and per-task overrides, on every pool (in progress)."""

from __future__ import annotations


class TimeoutTaskMixin:
    """GuardedTask's timeout hooks (task side)."""
