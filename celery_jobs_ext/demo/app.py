"""The demo's Celery app, loaded by the demo itself and by its ``celery worker`` subprocess.

Configured from the environment the demo sets: ``JOBS_DEMO_DIR`` (scratch folder),
``JOBS_DEMO_BROKER`` and ``JOBS_DEMO_STATE`` (default: embedded, in that folder).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.utils.log import get_task_logger

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.demo import broker

DEMO_DIR = Path(os.environ.get("JOBS_DEMO_DIR", ".demo")).resolve()
(DEMO_DIR / "results").mkdir(parents=True, exist_ok=True)
app = Celery("celery_jobs_ext.demo")
_broker = os.environ.get("JOBS_DEMO_BROKER") or "filesystem://"
app.conf.update(
    broker_url=_broker,
    result_backend=os.environ.get("JOBS_DEMO_RESULTS") or f"file://{DEMO_DIR / 'results'}",
    jobs_state_url=os.environ.get("JOBS_DEMO_STATE") or f"sqlite:///{DEMO_DIR / 'state.db'}",
    jobs_state_prefix="jobs-demo:",
    jobs_retry_strategy="fixed",
    jobs_retry_base=1,
    task_default_queue="jobs-demo",
    jobs_dead_letter_queue="jobs-demo-dead",
    jobs_queue_rate_limits={"jobs-demo-limited": "2/s"},
    jobs_allowed_shell_commands=["echo", "uname"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
if _broker.startswith("filesystem"):
    # Kombu's filesystem transport with atomic publish and claim (demo/broker.py says why).
    app.conf.broker_transport = broker.TRANSPORT
    app.conf.broker_transport_options = broker.transport_options(DEMO_DIR / "broker")


@app.task(base=GuardedTask, name="demo.add")
def add(x: int, y: int) -> int:
    """A GuardedTask: the extension's behaviour applies."""
    return x + y


@app.task(name="demo.plain_multiply")
def plain_multiply(x: int, y: int) -> int:
    """A plain task in the same app: untouched."""
    return x * y


@app.task(base=GuardedTask, bind=True, name="demo.flaky", max_retries=3)
def flaky(self: Task, succeed_on: int) -> str:
    """Fails until its ``succeed_on``-th attempt; retries wait ``jobs_retry_base`` (fixed)."""
    attempt = self.request.retries + 1
    if attempt < succeed_on:
        raise self.retry(exc=RuntimeError(f"attempt {attempt} failed"))
    return f"succeeded on attempt {attempt}"


logger = get_task_logger(__name__)


@app.task(base=GuardedTask, name="demo.stamp")
def stamp() -> float:
    """Returns when it started: the rate-limited queue spaces these out."""
    return time.time()


@app.task(base=GuardedTask, name="demo.connect")
def connect(url: str, api_key: str) -> str:
    """Logs its secrets, as real code does by accident; the worker's log shows them masked."""
    logger.warning("connecting to %s with api_key=%s", url, api_key)
    return "connected"


# -- fluent chaining: a then/catch/finally_ pipeline (step 6 of the demo) ----------------


@app.task(base=GuardedTask, name="demo.reserve")
def reserve(order: str) -> str:
    """First step of the pipeline."""
    return f"reserved {order}"


@app.task(base=GuardedTask, name="demo.charge")
def charge(reservation: str, card: str) -> str:
    """Second step: a declined card fails it, with the card's token in the message."""
    if card.startswith("declined:"):
        raise ValueError(f"card declined, token={card.split(':', 1)[1]}")
    return f"{reservation}, charged"


@app.task(base=GuardedTask, name="demo.report")
def report(payload: Any, label: str) -> None:
    """A then/catch/finally_ callback: keeps what it received in the shared state for the demo."""
    import json

    from celery_jobs_ext.state import get_state

    get_state(app).hset(f"demo-report:{label}", {"json": json.dumps(payload)})


# -- dead-letter queue: a task that fails until its input exists (step 7 of the demo) ----


@app.task(base=GuardedTask, name="demo.import_orders")
def import_orders(month: str) -> str:
    """Fails for good (no retries) until the month's feed file exists in the demo folder."""
    feed = DEMO_DIR / f"feed-{month}.csv"
    if not feed.exists():
        raise FileNotFoundError(f"no feed file {feed.name}")
    return f"imported {len(feed.read_text().splitlines()) - 1} order(s) from {feed.name}"
