"""The health report's three renderings: a table, JSON and Prometheus' text format."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from celery_jobs_ext.jsonout import to_json

FORMATS = ("table", "json", "prometheus")


# -- renderers --------------------------------------------------------------------------------------


def render(report: Mapping[str, Any], output_format: str, color: bool = False) -> str:
    """Render an already masked report in one of :data:`FORMATS`."""
    if output_format == "json":
        return render_json(report)
    if output_format == "prometheus":
        return render_prometheus(report)
    return render_table(report, color=color)


def render_json(report: Mapping[str, Any]) -> str:
    """The report through the commands' one JSON writer (:func:`celery_jobs_ext.jsonout.to_json`)."""
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
