"""celery-jobs-ext: production guard rails for Celery tasks.

The public names load on first use (PEP 562): Celery imports this package's CLI
module for every ``celery`` command, and an app that never uses the extension should
pay nothing for it, neither import time nor signal receivers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BrokerUnavailable": "celery_jobs_ext.errors",
    "ChainingError": "celery_jobs_ext.errors",
    "ConfigCache": "celery_jobs_ext.config",
    "DeadLetterBrokerUnavailable": "celery_jobs_ext.deadletter",
    "DeadLetterError": "celery_jobs_ext.errors",
    "DeadLetterQueue": "celery_jobs_ext.deadletter",
    "ErrorDescription": "celery_jobs_ext.canvas",
    "GuardedTask": "celery_jobs_ext.task",
    "ImproperlyConfigured": "celery_jobs_ext.errors",
    "InvalidRate": "celery_jobs_ext.errors",
    "JobChain": "celery_jobs_ext.canvas",
    "JobSignature": "celery_jobs_ext.canvas",
    "JobTimeout": "celery_jobs_ext.errors",
    "JobsConfig": "celery_jobs_ext.config",
    "JobsError": "celery_jobs_ext.errors",
    "MaskingFilter": "celery_jobs_ext.masking",
    "Outcome": "celery_jobs_ext.canvas",
    "RateLimitExceeded": "celery_jobs_ext.errors",
    "RateLimiter": "celery_jobs_ext.ratelimit",
    "ShellCommandFailed": "celery_jobs_ext.errors",
    "ShellCommandNotAllowed": "celery_jobs_ext.errors",
    "ShellCommandTimedOut": "celery_jobs_ext.errors",
    "StateUnavailable": "celery_jobs_ext.errors",
    "build_report": "celery_jobs_ext.health",
    "install": "celery_jobs_ext.app",
    "mask": "celery_jobs_ext.masking",
    "mask_text": "celery_jobs_ext.masking",
    "shell_task": "celery_jobs_ext.shell",
    "validate_command": "celery_jobs_ext.shell",
}

if TYPE_CHECKING:
    from celery_jobs_ext.app import install
    from celery_jobs_ext.canvas import ErrorDescription, JobChain, JobSignature, Outcome
    from celery_jobs_ext.config import ConfigCache, JobsConfig
    from celery_jobs_ext.deadletter import DeadLetterBrokerUnavailable, DeadLetterQueue
    from celery_jobs_ext.errors import (
        BrokerUnavailable,
        ChainingError,
        DeadLetterError,
        ImproperlyConfigured,
        InvalidRate,
        JobsError,
        JobTimeout,
        RateLimitExceeded,
        ShellCommandFailed,
        ShellCommandNotAllowed,
        ShellCommandTimedOut,
        StateUnavailable,
    )
    from celery_jobs_ext.health import build_report
    from celery_jobs_ext.masking import MaskingFilter, mask, mask_text
    from celery_jobs_ext.ratelimit import RateLimiter
    from celery_jobs_ext.shell import shell_task, validate_command
    from celery_jobs_ext.task import GuardedTask


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'celery_jobs_ext' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "BrokerUnavailable",
    "ChainingError",
    "ConfigCache",
    "DeadLetterBrokerUnavailable",
    "DeadLetterError",
    "DeadLetterQueue",
    "ErrorDescription",
    "GuardedTask",
    "ImproperlyConfigured",
    "InvalidRate",
    "JobChain",
    "JobSignature",
    "JobTimeout",
    "JobsConfig",
    "JobsError",
    "MaskingFilter",
    "Outcome",
    "RateLimitExceeded",
    "RateLimiter",
    "ShellCommandFailed",
    "ShellCommandNotAllowed",
    "ShellCommandTimedOut",
    "StateUnavailable",
    "build_report",
    "install",
    "mask",
    "mask_text",
    "shell_task",
    "validate_command",
]
