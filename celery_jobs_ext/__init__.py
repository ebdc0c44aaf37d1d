"""celery-jobs-ext: production guard rails for Celery tasks."""

from __future__ import annotations

__version__ = "0.1.0"

from celery_jobs_ext.app import install
from celery_jobs_ext.canvas import ChainingError, ErrorDescription, JobChain, JobSignature, Outcome
from celery_jobs_ext.config import ConfigCache, JobsConfig
from celery_jobs_ext.deadletter import DeadLetterQueue
from celery_jobs_ext.errors import ImproperlyConfigured, JobsError, StateUnavailable
from celery_jobs_ext.health import build_report
from celery_jobs_ext.masking import MaskingFilter, mask, mask_text
from celery_jobs_ext.ratelimit import RateLimiter, RateLimitExceeded
from celery_jobs_ext.shell import (
    ShellCommandFailed,
    ShellCommandNotAllowed,
    ShellCommandTimedOut,
    shell_task,
    validate_command,
)
from celery_jobs_ext.task import GuardedTask
from celery_jobs_ext.timeouts import JobTimeout

__all__ = [
    "ChainingError",
    "ConfigCache",
    "DeadLetterQueue",
    "ErrorDescription",
    "GuardedTask",
    "ImproperlyConfigured",
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
