"""install(app): wire the extension into one Celery app.

Each concern's module owns its hooks (signal receivers connect at import,
bootsteps are defined beside the feature); this only registers them on an app,
once.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from celery_jobs_ext.canvas import register_canvas_tasks
from celery_jobs_ext.config import ConfigCheck, register_defaults
from celery_jobs_ext.extension import extension_for
from celery_jobs_ext.metrics import MetricsStep
from celery_jobs_ext.ratelimit import RateLimitStep
from celery_jobs_ext.reconnect import ConnectionLossCheck, RedisReconnectFix
from celery_jobs_ext.shell import register_shell_task
from celery_jobs_ext.state import StateCheck
from celery_jobs_ext.timeouts import TimeoutPool

#: The worker bootsteps, in the order they are added: (blueprint, step).
_BOOTSTEPS: tuple[tuple[str, Any], ...] = (
    ("worker", ConfigCheck),
    ("worker", StateCheck),
    ("worker", TimeoutPool),
    ("consumer", RateLimitStep),
    ("consumer", MetricsStep),
    ("consumer", RedisReconnectFix),
    ("consumer", ConnectionLossCheck),
)


def install(app: Celery) -> Celery:
    """Install celery-jobs-ext on ``app``; safe to call any number of times.

    Registers the ``jobs_*`` defaults, the worker bootsteps (:data:`_BOOTSTEPS`: settings
    and shared state checked before the worker consumes anything, the timeout pool, the
    rate limiter, metrics, the Redis reconnect fix) and the ``jobs.shell``, ``jobs.catch``
    and ``jobs.finally`` tasks, and records them on the app's
    :class:`~celery_jobs_ext.extension.Extension`.
    ``GuardedTask`` calls this when it is bound, so users rarely need to.

    Returns:
        The app, for chaining.
    """
    extension = extension_for(app)
    if extension.installed:
        return app
    extension.installed = True
    register_defaults(app)
    for blueprint, step in _BOOTSTEPS:
        app.steps[blueprint].add(step)
        extension.registered.append(f"{blueprint} step {step.__name__}")
    register_shell_task(app)
    extension.registered.append("task jobs.shell, worker step ShellPolicyCheck")
    register_canvas_tasks(app)
    extension.registered.append("tasks jobs.catch, jobs.finally")
    return app
