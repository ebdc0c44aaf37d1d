"""Fluent chaining on signatures: then, catch, finally_, chain (in progress)."""

from __future__ import annotations


class CanvasTaskMixin:
    """GuardedTask's signature factories (``s``, ``si``, ``signature``)."""
