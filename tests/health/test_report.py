"""The report's pure parts: the 24-hour bucket window, thresholds, masking and the table layout."""

from __future__ import annotations

import re
from typing import Any

import pytest

from celery_jobs_ext.health import breaches, mask_report, parse_threshold, render_prometheus, render_table
from celery_jobs_ext.metrics import last_24h_keys


def _minutes(key: str) -> range:
    kind, number = key.split(":")[1:]
    n = int(number)
    return range(n, n + 1) if kind == "minute" else range(n * 60, n * 60 + 60)


@pytest.mark.parametrize("now", [0.0, 59.9, 3600.0, 1_764_000_000.0, 1_764_000_000.0 + 59 * 60 + 59.5])
def test_last_24h_keys_cover_1440_minutes_once_with_few_reads(now: float) -> None:
    keys = last_24h_keys(now)
    covered = [minute for key in keys for minute in _minutes(key)]
    current = int(now // 60)
    assert sorted(covered) == list(range(current - 1439, current + 1))  # each minute exactly once
    assert len(keys) <= 59 + 24 + 60


def _report(**queues: dict[str, Any]) -> dict[str, Any]:
    def queue(
        pending: int = 0,
        failed: int = 0,
        failure_rate: float | None = None,
        limit: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        current, maximum = limit or (None, None)
        return {
            "status": {"pending": pending, "processing": 0, "completed": 1245, "failed": failed},
            "rate_limit": {
                "current": current,
                "max": maximum,
                "percentage": None if limit is None else round(current / maximum * 100, 1),  # type: ignore[operator]
            },
            "last_24h": {
                "executions": 0 if failure_rate is None else 156,
                "success_rate": None if failure_rate is None else round(100 - failure_rate, 1),
                "failure_rate": failure_rate,
                "avg_duration_seconds": None if failure_rate is None else 2.45,
            },
        }

    return {
        "generated_at": "2026-01-01T00:00:00Z",
        "config": {
            "retry_strategy": "exponential",
            "retry_base": 60,
            "retry_multiplier": 2.0,
            "retry_max": 3600,
            "job_timeout": 300,
            "dead_letter_queue": "failed_jobs",
            "rate_limits": {"default": 50},
        },
        "queues": {name: queue(**spec) for name, spec in queues.items()},
        "workers": {"celery@a": {"queues": ["default"], "processing": 0, "pid": 1, "last_seen_seconds": 0.5}},
        "dead_letter": {"queue": "failed_jobs", "total": 12, "by_queue": {"default": 12}},
    }


def test_thresholds_parse_and_cross_per_queue_but_never_on_missing_values() -> None:
    report = _report(
        default={"pending": 1500, "failure_rate": 7.7},
        idle={"pending": 3},  # no executions: null rates
    )
    checks = [
        parse_threshold(text) for text in ("failure_rate>5", "pending>=1000", "dead_letter>10", "workers<1")
    ]
    assert breaches(report, checks) == [
        "failure_rate>5 on queue 'default': 7.7",
        "pending>=1000 on queue 'default': 1500",
        "dead_letter>10: 12",
    ]
    assert breaches(report, [parse_threshold("failure_rate<1")]) == []  # idle's null rate crosses nothing


@pytest.mark.parametrize("text", ["failure_rate", "failure_rate>>1", "pending>ten", "speed>1"])
def test_malformed_or_unknown_thresholds_are_refused_with_the_metric_list(text: str) -> None:
    with pytest.raises(ValueError, match="--fail-on"):
        parse_threshold(text)


def test_masking_hides_secrets_in_names_but_keeps_a_secret_sounding_queues_numbers() -> None:
    report = _report(session={"pending": 5}, **{"redis://:hunter2@cache:6379/0": {"pending": 1}})
    masked = mask_report(report)
    assert masked["queues"]["session"]["status"]["pending"] == 5
    assert "hunter2" not in repr(masked)
    assert "redis://:***PASSWORD***@cache:6379/0" in masked["queues"]
    assert "hunter2" not in render_prometheus(masked)


def test_table_is_aligned_with_thousands_separators_and_colour_only_when_asked() -> None:
    report = _report(
        default={"pending": 42_000, "failed": 12, "failure_rate": 7.7, "limit": (23, 50)},
        high_priority={"pending": 0},
    )
    plain = render_table(report)
    assert "\033[" not in plain
    rows = [line for line in plain.splitlines() if line.startswith(("QUEUE", "default", "high_priority"))]
    assert len(rows) == 3
    # Every column starts at the same offset on every row (numbers right-aligned under their heading).
    header = rows[0]
    for title in ("PENDING", "COMPLETED", "FAILED", "RUNS 24H"):
        end = header.index(title) + len(title)
        assert all(row[end - 1] != " " and (len(row) == end or row[end] == " ") for row in rows[1:]), title
    assert "42,000" in rows[1] and "1,245" in rows[1]
    assert "[#####.....] 23/50 46.0%" in rows[1]
    assert "no limit" in rows[2]
    assert re.search(r"156\s+92\.3%\s+7\.7%\s+2\.450 s$", rows[1])
    assert "Dead-letter queue failed_jobs" in plain and "12 task(s): default 12" in plain

    coloured = render_table(report, color=True)
    assert "\033[31m" in coloured  # failures in red
    assert re.sub(r"\033\[\d+m", "", coloured) == plain
