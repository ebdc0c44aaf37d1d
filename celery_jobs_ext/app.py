"""install(app): wire the extension into one Celery app.

Each concern's module owns its hooks (signal receivers connect at import,
bootsteps are defined beside the feature); this only registers them on an app,
once.
"""

from __future__ import annotations

from celery import Celery

from celery_jobs_ext.canvas import register_canvas_tasks
from celery_jobs_ext.config import ConfigCheck, register_defaults
from celery_jobs_ext.metrics import MetricsStep
from celery_jobs_ext.ratelimit import RateLimitStep
from celery_jobs_ext.reconnect import RedisReconnectFix
from celery_jobs_ext.shell import register_shell_task
from celery_jobs_ext.state import StateCheck
from celery_jobs_ext.timeouts import TimeoutPool

_INSTALLED = "_celery_jobs_ext_installed"


def install(app: Celery) -> Celery:
    """Install celery-jobs-ext on ``app``; safe to call any number of times.

    Registers the ``jobs_*`` defaults, the worker bootsteps that validate the
    settings and reach the shared state before the worker consumes anything, and
    the ``jobs.shell`` task.
    ``GuardedTask`` calls this when it is bound, so users rarely need to.

    Returns:
        The app, for chaining.
    """
    if app.__dict__.get(_INSTALLED):
        return app
    setattr(app, _INSTALLED, True)
    register_defaults(app)
    app.steps["worker"].add(ConfigCheck)
    app.steps["worker"].add(StateCheck)
    app.steps["worker"].add(TimeoutPool)
    app.steps["consumer"].add(RateLimitStep)
    app.steps["consumer"].add(MetricsStep)
    app.steps["consumer"].add(RedisReconnectFix)
    register_shell_task(app)
    register_canvas_tasks(app)
    return app
