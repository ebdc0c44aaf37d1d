"""Fluent chaining on signatures: then, catch, finally_, chain (in progress)."""

from __future__ import annotations


class CanvasTaskMixin:
    """GuardedTask's signature factories (``s``, ``si``, ``signature``)."""


def register_canvas_tasks(app: object) -> None:
    """Register the helper tasks the fluent methods link to; ``install(app)`` calls this once."""
