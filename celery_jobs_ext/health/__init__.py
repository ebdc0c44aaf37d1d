"""The health report behind ``celery -A proj jobs-health``: one dict, three renderings.

:func:`build_report` reads everything in a handful of round trips: the shared state's
clock, the rate-limit overrides, one batch for the lifetime totals, the last 24 hours of
metric buckets and the worker heartbeats, one read of the rate-limit start counters, and
one broker pipeline (Redis) or one passive declare per queue (RabbitMQ) for the pending
messages. :func:`render_table`, :func:`render_json` and :func:`render_prometheus` format
it (in :mod:`.render`; the report is built in :mod:`.report`); every string they
print has gone through :func:`~celery_jobs_ext.masking.mask_text`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import BrokerUnavailable
from celery_jobs_ext.health.render import FORMATS, render, render_json, render_prometheus, render_table
from celery_jobs_ext.health.report import (
    BROKER_TIMEOUT,
    Threshold,
    breaches,
    build_report,
    known_queues,
    mask_report,
    parse_threshold,
    pending_messages,
)
from celery_jobs_ext.masking import mask_text

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "BROKER_TIMEOUT",
    "FORMATS",
    "BrokerUnavailable",
    "Threshold",
    "breaches",
    "build_report",
    "known_queues",
    "mask_report",
    "parse_threshold",
    "pending_messages",
    "render",
    "render_json",
    "render_prometheus",
    "render_table",
    "run",
]


def run(
    app: Celery,
    *,
    output_format: str = "table",
    queue: str | None = None,
    color: bool = False,
    thresholds: Iterable[Threshold] = (),
) -> tuple[str, list[str]]:
    """Build, mask and render the report; return the text and the crossed thresholds (masked).

    Raises:
        StateUnavailable, BrokerUnavailable: a store the report needs cannot be reached.
    """
    keys = ConfigCache.get(app).mask_keys
    report = mask_report(build_report(app, queue), keys)
    return render(report, output_format, color=color), [
        mask_text(line, keys) for line in breaches(report, thresholds)
    ]
