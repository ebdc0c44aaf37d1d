"""The health report as one dict: what :func:`build_report` reads, and the ``--fail-on`` thresholds.

Reads everything in a handful of round trips (see the package docstring); masking of
the finished report is :func:`mask_report`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import BrokerUnavailable, StateUnavailable
from celery_jobs_ext.masking import mask_text
from celery_jobs_ext.metrics import (
    COUNTERS,
    TOTALS_KEY,
    WORKERS_KEY,
    last_24h_keys,
    read_heartbeats,
    split_fields,
)
from celery_jobs_ext.state import get_state

if TYPE_CHECKING:
    from celery import Celery

#: Seconds to wait for the broker before giving up (the command must never hang).
BROKER_TIMEOUT = 1.5


# -- the report ---------------------------------------------------------------------------


def build_report(app: Celery, queue: str | None = None) -> dict[str, Any]:
    """Everything ``jobs-health`` shows, as one JSON-ready dict (not yet masked).

    Lists every queue with a rate limit, a ``task_queues`` entry (or the default queue),
    recorded metrics, or a live worker consuming it; ``queue`` narrows that to one.

    Raises:
        StateUnavailable: the shared state cannot be reached.
        BrokerUnavailable: the broker cannot be reached.
    """
    from celery_jobs_ext.ratelimit import RateLimiter

    config = ConfigCache.get(app)
    state = get_state(app)
    limiter = RateLimiter(app, state)
    now = state.now()
    overrides = limiter.overrides()
    totals_raw, window_raw, beats_raw = (
        state.batch().hgetall([TOTALS_KEY]).hgetall(last_24h_keys(now)).get_expiring(WORKERS_KEY).execute()
    )
    totals = split_fields(totals_raw)
    window = split_fields(window_raw)
    workers = read_heartbeats(beats_raw)

    limits = {name: limit for name, limit in config.queue_rate_limits.items() if limit > 0}
    for name, limit in overrides.items():
        if limit > 0:
            limits[name] = limit
        else:
            limits.pop(name, None)

    if queue is not None:
        names = [queue]
    else:
        found = set(app.amqp.queues) | set(limits) | set(totals) | set(window)
        for beat in workers.values():
            found.update(beat.get("queues") or ())
        found.discard(config.dead_letter_queue or "")
        found.discard("")
        names = sorted(found)

    limited = [name for name in names if name in limits]
    usage = limiter.usage_many(limited) if limited else {}
    pending = pending_messages(app, names)
    processing = _processing(workers)

    queues: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name in names:
        lifetime = totals.get(name, {})
        recent = window.get(name, {})
        limit, source = limiter.effective_limit(name, max_age=math.inf)
        queues[name] = {
            "status": {
                "pending": pending.get(name, 0),
                "processing": processing.get(name, 0),
                "completed": int(lifetime.get("succeeded", 0)),
                "failed": int(lifetime.get("failed", 0)),
            },
            "rate_limit": _rate_limit(usage.get(name, 0), limit),
            "last_24h": _last_24h(recent),
        }
        details[name] = {
            "rate_limit_source": source,
            "lifetime": {field: int(lifetime.get(field, 0)) for field in COUNTERS},
            "last_24h": {field: int(recent.get(field, 0)) for field in COUNTERS},
        }

    report: dict[str, Any] = {
        "generated_at": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {
            "retry_strategy": config.retry_strategy,
            "retry_base": config.retry_base,
            "retry_multiplier": config.retry_multiplier,
            "retry_max": config.retry_max,
            "job_timeout": config.timeout,
            "dead_letter_queue": config.dead_letter_queue,
            "rate_limits": {name: _number(limit) for name, limit in sorted(limits.items())},
        },
        "queues": queues,
        "queue_details": details,
        "workers": {
            hostname: {
                "queues": list(beat.get("queues") or ()),
                "processing": sum((beat.get("processing") or {}).values()),
                "pid": beat.get("pid"),
                "last_seen_seconds": round(max(0.0, now - float(beat.get("sent_at") or now)), 1),
            }
            for hostname, beat in sorted(workers.items())
        },
        "metrics_enabled": config.metrics,
    }
    dead_letter = _dead_letter(app, config.dead_letter_queue)
    if dead_letter is not None:
        report["dead_letter"] = dead_letter
    return report


def known_queues(app: Celery) -> set[str]:
    """Every queue a setting, a rate limit (configured or set), a metric or a live worker knows.

    A name outside this set is most likely a typo: the commands warn about it, and
    ``jobs-health --queue NAME --fail-on …`` fails for it rather than report zeros forever.

    Raises:
        StateUnavailable: the shared state cannot be reached.
    """
    from celery_jobs_ext.ratelimit import RateLimiter

    config = ConfigCache.get(app)
    state = get_state(app)
    totals_raw, window_raw, beats_raw = (
        state.batch()
        .hgetall([TOTALS_KEY])
        .hgetall(last_24h_keys(state.now()))
        .get_expiring(WORKERS_KEY)
        .execute()
    )
    found = set(app.amqp.queues) | set(config.queue_rate_limits) | set(RateLimiter(app, state).overrides())
    found |= set(split_fields(totals_raw)) | set(split_fields(window_raw))
    for beat in read_heartbeats(beats_raw).values():
        found.update(beat.get("queues") or ())
    if config.dead_letter_queue:
        found.add(config.dead_letter_queue)
    return found


def _processing(workers: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """In-flight tasks per queue: the sum over live heartbeats (a dead worker's has expired)."""
    counts: dict[str, int] = {}
    for beat in workers.values():
        for name, count in (beat.get("processing") or {}).items():
            counts[name] = counts.get(name, 0) + int(count)
    return counts


def _rate_limit(current: int, limit: float) -> dict[str, Any]:
    if limit <= 0:
        return {"current": None, "max": None, "percentage": None}
    return {"current": current, "max": _number(limit), "percentage": round(current / limit * 100, 1)}


def _last_24h(recent: Mapping[str, float]) -> dict[str, Any]:
    succeeded = int(recent.get("succeeded", 0))
    failed = int(recent.get("failed", 0))
    executions = succeeded + failed
    count = recent.get("duration_count", 0)
    return {
        "executions": executions,
        "success_rate": round(succeeded / executions * 100, 1) if executions else None,
        "failure_rate": round(failed / executions * 100, 1) if executions else None,
        "avg_duration_seconds": round(recent.get("duration_sum", 0) / count, 3) if count else None,
    }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _dead_letter(app: Celery, name: str | None) -> dict[str, Any] | None:
    """The dead-letter queue's ``stats()``, when the feature is there and configured."""
    if not name:
        return None
    try:
        from celery_jobs_ext.deadletter import DeadLetterQueue  # type: ignore[attr-defined]
    except ImportError:
        return None
    stats = getattr(DeadLetterQueue, "stats", None)
    if stats is None:
        return None
    try:
        found = DeadLetterQueue(app).stats()
    except StateUnavailable:
        raise
    except Exception as exc:  # shown, not fatal: the rest of the report still helps
        return {"queue": name, "total": None, "by_queue": {}, "error": str(exc)}
    return {"queue": name, "total": found.get("total"), "by_queue": dict(found.get("by_queue") or {})}


# -- the broker --------------------------------------------------------------------------


def pending_messages(app: Celery, queues: Iterable[str], timeout: float = BROKER_TIMEOUT) -> dict[str, int]:
    """Messages waiting in the broker per queue, without consuming or creating anything.

    Redis: the lengths of each queue's lists (one per priority step), in one pipeline.
    Other brokers: a passive declare per queue (a queue the broker does not have holds 0).

    Raises:
        BrokerUnavailable: the broker cannot be reached within ``timeout`` seconds.
    """
    names = list(queues)
    connection = app.connection_for_read(
        connect_timeout=timeout,
        transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    )
    errors = (OSError, *connection.connection_errors)
    try:
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2)
            channel = connection.default_channel
            if connection.transport.driver_type == "redis" and hasattr(channel, "_q_for_pri"):
                return _redis_lengths(channel, names)
            return _declared_counts(connection, names)
        except errors as exc:
            raise _broker_error(connection, exc) from exc
        except Exception as exc:  # kombu's OperationalError wraps most of the above
            if type(exc).__name__ == "OperationalError":
                raise _broker_error(connection, exc) from exc
            raise
    finally:
        connection.release()


def _broker_error(connection: Any, exc: BaseException) -> BrokerUnavailable:
    # as_uri() alone shows ":**@" even without a password; sanitize the full URI instead.
    where = maybe_sanitize_url(connection.as_uri(include_password=True))
    return BrokerUnavailable(f"Broker {where} is unreachable: {exc}")


def _redis_lengths(channel: Any, names: list[str]) -> dict[str, int]:
    # Kombu keeps a priority queue as several lists: "name", "name\x06\x163", … (one per step).
    steps = list(channel.priority_steps)
    with channel.conn_or_acquire() as client:
        pipe = client.pipeline()
        for name in names:
            for step in steps:
                pipe.llen(channel._q_for_pri(name, step))
        sizes = pipe.execute()
    return {
        name: sum(int(size) for size in sizes[i * len(steps) : (i + 1) * len(steps)])
        for i, name in enumerate(names)
    }


def _declared_counts(connection: Any, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    channel = connection.channel()
    try:
        for name in names:
            try:
                counts[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except connection.channel_errors:
                counts[name] = 0  # the broker has no such queue: nothing waits in it
                channel = connection.channel()  # a failed passive declare closes the channel
    finally:
        channel.close()
    return counts


# -- thresholds (--fail-on) ------------------------------------------------------------------

_THRESHOLD = re.compile(r"\s*([a-z_]+)\s*(>=|<=|==|>|<|=)\s*(-?[0-9]{1,15}(?:\.[0-9]{1,6})?)\s*", re.ASCII)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
}
#: Per-queue metrics a threshold can name, and where each lives in a queue's report.
QUEUE_METRICS: dict[str, tuple[str, str]] = {
    "pending": ("status", "pending"),
    "processing": ("status", "processing"),
    "completed": ("status", "completed"),
    "failed": ("status", "failed"),
    "rate_limit": ("rate_limit", "percentage"),
    "rate_limit_current": ("rate_limit", "current"),
    "executions": ("last_24h", "executions"),
    "success_rate": ("last_24h", "success_rate"),
    "failure_rate": ("last_24h", "failure_rate"),
    "avg_duration_seconds": ("last_24h", "avg_duration_seconds"),
}
#: Report-wide metrics.
GLOBAL_METRICS = ("workers", "dead_letter")


@dataclass(frozen=True)
class Threshold:
    """``metric op value``, e.g. ``failure_rate>10``."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{_number(self.value)}"


def parse_threshold(text: str) -> Threshold:
    """Parse ``--fail-on`` text such as ``failure_rate>10`` or ``pending>=1000``.

    Raises:
        ValueError: not ``METRIC OP NUMBER``, or an unknown metric; the message lists the metrics.
    """
    match = _THRESHOLD.fullmatch(text)
    known = sorted([*QUEUE_METRICS, *GLOBAL_METRICS])
    foreign = next((char for char in text if not char.isascii() and char.isnumeric()), None)
    if foreign is not None:
        raise ValueError(f"--fail-on {text[:40]!r}: {foreign!r} is not an ASCII digit; write numbers as 0-9")
    if not match:
        raise ValueError(
            f"--fail-on {text[:40]!r}: expected METRIC>NUMBER (or >=, <, <=, =), e.g. failure_rate>10, "
            "NUMBER at most 15 digits and 6 decimals"
        )
    metric, op, value = match.groups()
    if metric not in QUEUE_METRICS and metric not in GLOBAL_METRICS:
        raise ValueError(f"--fail-on {text[:40]!r}: unknown metric {metric!r}; one of {', '.join(known)}")
    return Threshold(metric, op, float(value))


def breaches(report: Mapping[str, Any], thresholds: Iterable[Threshold]) -> list[str]:
    """One line per crossed threshold (per queue for queue metrics); empty when healthy.

    A metric with no value (no executions in 24 h, a queue without a rate limit) crosses nothing.
    """
    found: list[str] = []
    for threshold in thresholds:
        compare = _COMPARE[threshold.op]
        if threshold.metric in QUEUE_METRICS:
            section, key = QUEUE_METRICS[threshold.metric]
            for name, queue in report["queues"].items():
                value = queue[section][key]
                if value is not None and compare(float(value), threshold.value):
                    found.append(f"{threshold} on queue {name!r}: {_number(value)}")
        else:
            value = _global_metric(report, threshold.metric)
            if value is not None and compare(float(value), threshold.value):
                found.append(f"{threshold}: {_number(value)}")
    return found


def _global_metric(report: Mapping[str, Any], metric: str) -> float | None:
    if metric == "workers":
        return float(len(report.get("workers") or {}))
    dead_letter = report.get("dead_letter")
    return None if not dead_letter or dead_letter.get("total") is None else float(dead_letter["total"])


# -- masking -------------------------------------------------------------------------------------


def mask_report(report: Any, keys: Iterable[str] | None = None) -> Any:
    """A copy of ``report`` with every string, dict keys included, through ``mask_text``.

    Not :func:`~celery_jobs_ext.masking.mask`, which would hide the whole value under a
    secret-looking key: a queue named ``session`` must keep its numbers.
    """
    if isinstance(report, str):
        return mask_text(report, keys)
    if isinstance(report, dict):
        return {mask_report(key, keys): mask_report(value, keys) for key, value in report.items()}
    if isinstance(report, (list, tuple)):
        return [mask_report(item, keys) for item in report]
    return report
