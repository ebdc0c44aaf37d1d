"""A plain Celery app with one busy task (``-A tests.restartapp``), for broker-restart tests.

``JOBS_TEST_CONF`` holds its settings as JSON; with ``JOBS_TEST_INSTALL=1`` the extension is
installed on it (its worker bootsteps included), otherwise it is plain Celery, which is how
the upstream failure is reproduced without this package.
"""

from __future__ import annotations

import json
import os
import time

import redis
from celery import Celery

app = Celery("tests.restartapp")
app.conf.update(json.loads(os.environ.get("JOBS_TEST_CONF", "{}")))
if os.environ.get("JOBS_TEST_INSTALL") == "1":
    from celery_jobs_ext import install

    install(app)

_ledger: redis.Redis | None = None


@app.task(name="restart.busy", bind=True, acks_late=True)
def busy(self: object, ledger_key: str, seconds: float) -> str:
    """Busy for ``seconds``; notes its start and its end (task id) in the ledger, on another Redis."""
    global _ledger
    if _ledger is None:
        _ledger = redis.Redis.from_url(os.environ["JOBS_TEST_LEDGER_URL"])
    task_id = str(self.request.id)  # type: ignore[attr-defined]
    _ledger.rpush(f"{ledger_key}:started", task_id)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    _ledger.rpush(f"{ledger_key}:ended", task_id)
    return "done"
