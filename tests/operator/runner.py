"""Run the operator commands: in process (Click's runner, for property tests) or as a real ``celery``.

In process, the real ``celery`` entry point gets the test's app object (Celery's ``-A``
takes one as well as a module path); the commands talk to the real Redis and RabbitMQ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from celery import Celery
from click.testing import CliRunner, Result

from tests.harness import ROOT


def invoke(app: Celery, *args: str, input: str | None = None) -> Result:
    """``celery -A app ARGS…`` in this process; stdout and stderr kept apart."""
    from celery.bin.celery import celery as main

    return CliRunner().invoke(main, list(args), default_map={"app": app}, input=input)


def run_celery(
    conf: dict[str, Any] | None,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``celery [-A tests.workerapp] ARGS…`` as a subprocess, configured by ``conf`` (None: no ``-A``)."""
    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env["JOBS_TEST_CONF"] = json.dumps(conf or {})
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    app_args = ["-A", "tests.workerapp"] if conf is not None else []
    return subprocess.run(
        [sys.executable, "-m", "celery", *app_args, *args],
        cwd=cwd or ROOT,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def conf_of(app: Celery, **settings: Any) -> dict[str, Any]:
    """The settings a command subprocess needs to share ``app``'s broker, state and queues."""
    conf: dict[str, Any] = {
        "broker_url": app.conf.broker_url,
        "task_default_queue": app.conf.task_default_queue,
        "broker_connection_retry_on_startup": False,
    }
    conf.update({key: value for key, value in app.conf.changes.items() if key.startswith("jobs_")})
    conf.update(settings)
    return conf


def strict_json(text: str) -> Any:
    """Parse JSON as the standard says: ``Infinity`` and ``NaN`` are errors."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def run_in_terminal(conf: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> str:
    """``celery -A tests.workerapp ARGS…`` with stdout on a pseudo-terminal; return what it printed."""
    import pty

    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env["JOBS_TEST_CONF"] = json.dumps(conf)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", *args],
        cwd=ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
        process.wait(60)
    return output.decode(errors="replace")
