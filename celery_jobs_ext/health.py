"""The health report behind ``celery -A proj jobs-health``: one dict, three renderings.

:func:`build_report` reads everything in a handful of round trips: the shared state's
clock, the rate-limit overrides, one batch for the lifetime totals, the last 24 hours of
metric buckets and the worker heartbeats, one read of the rate-limit start counters, and
one broker pipeline (Redis) or one passive declare per queue (RabbitMQ) for the pending
messages. :func:`render_table`, :func:`render_json` and :func:`render_prometheus` format
it; every string they print has gone through :func:`~celery_jobs_ext.masking.mask_text`.
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

__all__ = [
    "FORMATS",
    "BrokerUnavailable",
    "Threshold",
    "breaches",
    "build_report",
    "known_queues",
    "mask_report",
    "parse_threshold",
    "render",
    "render_json",
    "render_prometheus",
    "render_table",
]

FORMATS = ("table", "json", "prometheus")
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


# -- renderers --------------------------------------------------------------------------------------


def render(report: Mapping[str, Any], output_format: str, color: bool = False) -> str:
    """Render an already masked report in one of :data:`FORMATS`."""
    if output_format == "json":
        return render_json(report)
    if output_format == "prometheus":
        return render_prometheus(report)
    return render_table(report, color=color)


def render_json(report: Mapping[str, Any]) -> str:
    """The report through the commands' one JSON writer (:func:`celery_jobs_ext.cli.to_json`)."""
    from celery_jobs_ext.cli import to_json

    return to_json(report)


#: click.style arguments per style name.
_STYLES: dict[str, dict[str, Any]] = {
    "red": {"fg": "red"},
    "yellow": {"fg": "yellow"},
    "green": {"fg": "green"},
    "bold": {"bold": True},
    "dim": {"dim": True},
}


def render_table(report: Mapping[str, Any], color: bool = False) -> str:
    """Aligned, human-readable text; colour (``click.style``) only when ``color``.

    The command passes ``color`` from Celery's ``--no-color``/``NO_COLOR`` and whether
    stdout is a terminal, and prints through ``click.echo``, which also strips styles
    when the output is not a terminal.
    """
    import click

    def paint(text: str, style: str | None) -> str:
        return click.style(text, **_STYLES[style]) if color and style else text

    lines = [paint("celery-jobs-ext health", "bold") + "  " + str(report.get("generated_at", ""))]
    lines += ["", paint("Configuration", "bold")]
    config = report["config"]
    retry = str(config["retry_strategy"])
    if retry != "none":
        retry += f" (base {_count(config['retry_base'])} s"
        if config["retry_strategy"] == "exponential":
            retry += f", x{config['retry_multiplier']:g}, max {_count(config['retry_max'])} s"
        retry += ")"
    limits = ", ".join(f"{name} {_count(limit)}/min" for name, limit in config["rate_limits"].items())
    for label, value in (
        ("retries", retry),
        ("job timeout", f"{_count(config['job_timeout'])} s" if config["job_timeout"] else "off"),
        ("dead letters", config["dead_letter_queue"] or "off"),
        ("rate limits", limits or "none"),
    ):
        lines.append(f"  {label:<13}{value}")
    if report.get("metrics_enabled") is False:
        lines.append(
            "  " + paint("metrics      off (jobs_metrics = False): counts below are not updated", "yellow")
        )

    header = ["QUEUE", "PENDING", "PROCESSING", "COMPLETED", "FAILED", "RATE LIMIT (60 S)", "RUNS 24H"]
    header += ["SUCCESS", "FAILURE", "AVG TIME"]
    rows: list[list[tuple[str, str | None]]] = []
    for name, queue in report["queues"].items():
        status, rate, recent = queue["status"], queue["rate_limit"], queue["last_24h"]
        failure = recent["failure_rate"]
        rows.append(
            [
                (name, None),
                (_count(status["pending"]), None),
                (_count(status["processing"]), None),
                (_count(status["completed"]), None),
                (_count(status["failed"]), "red" if status["failed"] else None),
                _usage(rate),
                (_count(recent["executions"]), None),
                (_percent(recent["success_rate"]), None),
                (_percent(failure), None if not failure else ("red" if failure >= 10 else "yellow")),
                (
                    "-"
                    if recent["avg_duration_seconds"] is None
                    else f"{recent['avg_duration_seconds']:,.3f} s",
                    None,
                ),
            ]
        )
    widths = [max([len(header[i])] + [len(row[i][0]) for row in rows]) for i in range(len(header))]
    left = {0, 5}

    def cell(i: int, text: str) -> str:
        return text.ljust(widths[i]) if i in left else text.rjust(widths[i])

    lines += ["", "  ".join(paint(cell(i, title), "bold") for i, title in enumerate(header)).rstrip()]
    for row in rows:
        lines.append("  ".join(paint(cell(i, text), style) for i, (text, style) in enumerate(row)).rstrip())
    if not rows:
        lines.append("(no queues)")

    dead_letter = report.get("dead_letter")
    if dead_letter is not None:
        lines += ["", paint("Dead-letter queue", "bold") + f" {dead_letter['queue']}"]
        if dead_letter.get("error"):
            lines.append("  " + paint(f"unavailable: {dead_letter['error']}", "red"))
        else:
            total = dead_letter.get("total") or 0
            origin = ", ".join(f"{name} {_count(n)}" for name, n in dead_letter["by_queue"].items())
            lines.append(f"  {_count(total)} task(s)" + (f": {origin}" if origin else ""))

    workers = report.get("workers") or {}
    lines += ["", paint("Workers", "bold") + f" ({len(workers)} alive)"]
    if not workers:
        lines.append("  " + paint("no worker heartbeats in the shared state", "yellow"))
    width = max((len(hostname) for hostname in workers), default=0)
    for hostname, worker in workers.items():
        lines.append(
            f"  {hostname.ljust(width)}  processing {_count(worker['processing'])}  "
            f"seen {worker['last_seen_seconds']:.1f} s ago  queues: {', '.join(worker['queues']) or '-'}"
        )
    return "\n".join(lines)


def _count(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _usage(rate: Mapping[str, Any], width: int = 10) -> tuple[str, str | None]:
    if rate["max"] is None:
        return "no limit", "dim"
    percentage = float(rate["percentage"])
    filled = min(width, round(percentage / 100 * width))
    bar = "[" + "#" * filled + "." * (width - filled) + "]"
    style = "red" if percentage >= 90 else "yellow" if percentage >= 70 else "green"
    return f"{bar} {_count(rate['current'])}/{_count(rate['max'])} {percentage:.1f}%", style


def render_prometheus(report: Mapping[str, Any]) -> str:
    """Prometheus text exposition format, generated by ``prometheus_client``."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return str(generate_latest(registry).decode("utf-8"))


class _ReportCollector:
    """A ``prometheus_client`` collector that yields one report's numbers."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = report

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        queues = self.report["queues"]
        details = self.report.get("queue_details") or {}

        def per_queue(family: Any, value_of: Callable[[str], Any]) -> Any:
            for name in queues:
                value = value_of(name)
                if value is not None:
                    family.add_metric([name], float(value))
            return family

        def gauge(name: str, documentation: str, value_of: Callable[[str], Any]) -> Any:
            return per_queue(GaugeMetricFamily(name, documentation, labels=["queue"]), value_of)

        def counter(name: str, documentation: str, field: str) -> Any:
            family = CounterMetricFamily(name, documentation, labels=["queue"])
            return per_queue(family, lambda q: (details.get(q) or {}).get("lifetime", {}).get(field))

        yield gauge(
            "celery_jobs_pending", "Messages waiting in the broker.", lambda q: queues[q]["status"]["pending"]
        )
        yield gauge(
            "celery_jobs_processing",
            "Tasks started and not finished, summed over live workers.",
            lambda q: queues[q]["status"]["processing"],
        )
        yield counter("celery_jobs_completed", "Tasks that succeeded (lifetime).", "succeeded")
        yield counter("celery_jobs_failed", "Tasks that failed for good (lifetime).", "failed")
        yield counter("celery_jobs_started", "Task runs started (lifetime).", "started")
        yield counter("celery_jobs_retried", "Task runs that ended in a retry (lifetime).", "retried")
        yield counter("celery_jobs_timed_out", "Task runs that hit their timeout (lifetime).", "timed_out")
        yield counter(
            "celery_jobs_dead_lettered", "Tasks sent to the dead-letter queue (lifetime).", "dead_lettered"
        )
        yield gauge(
            "celery_jobs_rate_limit_current",
            "Tasks started in the last 60 seconds on a rate-limited queue.",
            lambda q: queues[q]["rate_limit"]["current"],
        )
        yield gauge(
            "celery_jobs_rate_limit_max",
            "The queue's rate limit, in tasks per minute.",
            lambda q: queues[q]["rate_limit"]["max"],
        )
        yield gauge(
            "celery_jobs_rate_limit_usage_percent",
            "Rate-limit usage: current as a percentage of max.",
            lambda q: queues[q]["rate_limit"]["percentage"],
        )
        yield gauge(
            "celery_jobs_last_24h_executions",
            "Task runs that succeeded or failed for good in the last 24 hours.",
            lambda q: queues[q]["last_24h"]["executions"],
        )
        yield gauge(
            "celery_jobs_last_24h_success_rate_percent",
            "Share of the last 24 hours' executions that succeeded.",
            lambda q: queues[q]["last_24h"]["success_rate"],
        )
        yield gauge(
            "celery_jobs_last_24h_failure_rate_percent",
            "Share of the last 24 hours' executions that failed for good.",
            lambda q: queues[q]["last_24h"]["failure_rate"],
        )
        yield gauge(
            "celery_jobs_last_24h_avg_duration_seconds",
            "Mean duration of the last 24 hours' executions.",
            lambda q: queues[q]["last_24h"]["avg_duration_seconds"],
        )

        workers = self.report.get("workers") or {}
        yield GaugeMetricFamily("celery_jobs_workers", "Workers with a live heartbeat.", value=len(workers))
        processing = GaugeMetricFamily(
            "celery_jobs_worker_processing", "Tasks in flight on one live worker.", labels=["worker"]
        )
        for hostname, worker in workers.items():
            processing.add_metric([hostname], float(worker["processing"]))
        yield processing

        dead_letter = self.report.get("dead_letter")
        if dead_letter is not None and dead_letter.get("total") is not None:
            yield GaugeMetricFamily(
                "celery_jobs_dead_letter_messages",
                "Messages in the dead-letter queue.",
                value=float(dead_letter["total"]),
            )
            by_queue = GaugeMetricFamily(
                "celery_jobs_dead_letter_messages_by_queue",
                "Messages in the dead-letter queue, by the queue the task came from.",
                labels=["queue"],
            )
            for name, count in dead_letter["by_queue"].items():
                by_queue.add_metric([name], float(count))
            yield by_queue


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
