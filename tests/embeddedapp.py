"""A worker app on the demo's embedded broker, for the embedded-broker stress test.

Configured from the environment: ``JOBS_EMBEDDED_DIR`` (the broker's folder and the records),
``JOBS_EMBEDDED_TRANSPORT`` (``atomic``, the default, or ``kombu`` for Kombu's own filesystem
transport, to compare).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

from celery_jobs_ext.demo import broker

FOLDER = Path(os.environ.get("JOBS_EMBEDDED_DIR", ".embedded"))
RECORDS = FOLDER / "records"
RECORDS.mkdir(parents=True, exist_ok=True)

app = Celery("tests.embeddedapp")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options=broker.transport_options(FOLDER / "broker", polling_interval=0.01),
    task_default_queue="embedded",
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
if os.environ.get("JOBS_EMBEDDED_TRANSPORT", "atomic") == "atomic":
    app.conf.broker_transport = broker.TRANSPORT


@app.task(name="embedded.record")
def record(number: int) -> None:
    """Append the message's number to this process's record: one line per message consumed."""
    with open(RECORDS / f"{os.getpid()}.txt", "a") as file:
        file.write(f"{number}\n")
