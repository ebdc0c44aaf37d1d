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
