"""Micro-benchmarks of the extension's primitives, in microseconds per call.

    python -m benchmarks.micro [--redis redis://127.0.0.1:6379/11]

Median of several ``timeit`` repeats; the figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import timeit
from collections.abc import Callable

from celery import Celery

from celery_jobs_ext import ConfigCache, install
from celery_jobs_ext.state import create_state


def measure(func: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Median µs per call over ``repeat`` runs of ``number`` calls."""
    times = timeit.repeat(func, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=os.environ.get("JOBS_BENCH_REDIS", "redis://127.0.0.1:6379/11"))
    options = parser.parse_args()

    app = Celery("bench", broker=options.redis, set_as_current=True)
    install(app)
    ConfigCache.get(app)
    rows: list[tuple[str, float]] = [
        ("ConfigCache.get(app)", measure(lambda: ConfigCache.get(app), 1_000_000)),
        ("ConfigCache.get() (current app)", measure(ConfigCache.get, 1_000_000)),
    ]

    from celery_jobs_ext.masking import mask_text
    from celery_jobs_ext.shell import validate_command

    clean_1k = repr(
        {
            "task": "proj.tasks.process_payment",
            "host": "worker-03.eu-west-1.internal",
            "version": "5.7.0",
            "id": "4f8c2d1e-9b7a-4c3e-8f21-0a6b5c4d3e2f",
            "items": [{"sku": f"SKU-{i:05d}", "qty": i % 7, "note": "ordinary text"} for i in range(9)],
        }
    )[:1024]
    secret_1k = clean_1k[:700] + (
        " Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
        " password=hunter2hunter2 key=AKIAIOSFODNN7EXAMPLE"
    )
    clean_100k = clean_1k * 100
    rows += [
        ("mask_text, 1 KB without secrets", measure(lambda: mask_text(clean_1k), 20_000)),
        ("mask_text, 1 KB with 3 secrets", measure(lambda: mask_text(secret_1k), 5_000)),
        ("mask_text, 100 KB without secrets", measure(lambda: mask_text(clean_100k), 100)),
        (
            "validate_command('grep -E 'ERROR|WARN' /var/log/app.log', ['grep'])",
            measure(lambda: validate_command("grep -E 'ERROR|WARN' /var/log/app.log", ["grep"]), 5_000),
        ),
    ]

    with tempfile.TemporaryDirectory() as folder:
        for name, url in (("Redis", options.redis), ("SQLite", f"sqlite:///{folder}/bench.db")):
            state = create_state(url, prefix="bench:")
            state.ping()
            rows.append((f"{name}: ping (one round trip, the floor)", measure(state.ping, 2000)))
            rows.append((f"{name}: incr", measure(lambda s=state: s.incr("c", 1, 60), 2000)))  # type: ignore[misc]
            rows.append((f"{name}: acquire (GCRA)", measure(lambda s=state: s.acquire("b", 0.0001, 1), 2000)))  # type: ignore[misc]

            def batch(s=state) -> None:  # type: ignore[no-untyped-def]
                s.batch().acquire("b", 0.0001, 1).hincr("h", {"started": 1, "duration": 0.1}, 60).execute()

            rows.append((f"{name}: batch acquire + hincr", measure(batch, 2000)))
            state.clear_prefix()
            state.close()

    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}\n")
    print("| primitive | µs per call (median) |")
    print("|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.3f} |")


if __name__ == "__main__":
    main()
