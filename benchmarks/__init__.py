"""Benchmarks: ``python -m benchmarks`` (see docs/performance.md)."""

import os

#: Where the benchmarks find their servers (``JOBS_BENCH_REDIS``, ``JOBS_BENCH_AMQP``).
DEFAULT_REDIS = os.environ.get("JOBS_BENCH_REDIS", "redis://127.0.0.1:6379/11")
DEFAULT_AMQP = os.environ.get("JOBS_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
