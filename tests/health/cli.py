"""Run ``celery -A tests.workerapp jobs-health`` as a real subprocess, configured like the workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import ROOT

CELERY = str(Path(sys.executable).with_name("celery"))


def run_health(conf: dict[str, Any], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["JOBS_TEST_CONF"] = json.dumps(conf)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [CELERY, "-A", "tests.workerapp", "jobs-health", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def worker_conf(app: Any, **settings: Any) -> dict[str, Any]:
    """The JSON settings a worker (or the command) needs to share ``app``'s broker and state."""
    return {
        "broker_url": app.conf.broker_url,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "task_ignore_result": True,
        **settings,
    }
