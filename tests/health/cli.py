"""Run ``celery -A tests.workerapp jobs-health`` as a real subprocess, configured like the workers."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.operator.runner import run_celery


def run_health(conf: dict[str, Any], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``celery -A tests.workerapp jobs-health ARGS…`` through the suite's one command runner."""
    return run_celery(conf, "jobs-health", *args, timeout=timeout)


def worker_conf(app: Any, **settings: Any) -> dict[str, Any]:
    """The JSON settings a worker (or the command) needs to share ``app``'s broker and state."""
    return {
        "broker_url": app.conf.broker_url,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "task_ignore_result": True,
        **settings,
    }
