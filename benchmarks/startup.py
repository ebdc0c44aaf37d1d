"""Start-up cost: wall time and peak RSS of ``celery -A app jobs-health --json`` against ``celery --help``.

    python -m benchmarks.startup [--runs 7] [--redis redis://127.0.0.1:6379/11]

``celery --help`` is what Python and Celery cost anyway; the two import rows show what
importing Celery's CLI and the extension's CLI module cost on their own; ``jobs-health``
adds loading the app (``tests.workerapp``, configured for Redis), the extension, one report
(state and broker round trips) and its JSON rendering. Each command runs ``--runs`` times,
interleaved. The peak RSS comes from GNU ``/usr/bin/time -f %M``: a child's ``ru_maxrss``
seen from this process would include the RSS of this process at the fork.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import DEFAULT_REDIS
from tests.harness import unique

ROOT = Path(__file__).resolve().parent.parent


def commands() -> dict[str, list[str]]:
    celery = [sys.executable, "-m", "celery"]
    return {
        "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
        "python -c 'import celery.bin.celery'": [sys.executable, "-c", "import celery.bin.celery"],
        "python -c 'import celery_jobs_ext.cli'": [sys.executable, "-c", "import celery_jobs_ext.cli"],
        "celery --help": [*celery, "--help"],
        "celery -A tests.workerapp jobs-health --json": [
            *celery,
            "-A",
            "tests.workerapp",
            "jobs-health",
            "--json",
        ],
    }


TIME = "/usr/bin/time"


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of ``argv``."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as rss:
        started = time.perf_counter()
        process = subprocess.run(
            [TIME, "-f", "%M", "-o", rss.name, *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        wall = time.perf_counter() - started
        if process.returncode != 0:
            stderr = process.stderr.decode(errors="replace")
            raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}: {stderr[-2000:]}")
        return wall, int(rss.read().split()[-1]) / 1024  # KiB


def run(runs: int, redis_url: str) -> dict[str, list[tuple[float, float]]]:
    """Every command ``runs`` times, interleaved."""
    conf = {"broker_url": redis_url, "jobs_state_prefix": unique("bench") + ":"}
    env = dict(os.environ, JOBS_TEST_CONF=json.dumps(conf), PYTHONPATH=str(ROOT))
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands()}
    for argv in commands().values():  # warm the page cache
        run_once(argv, env)
    for _ in range(runs):
        for name, argv in commands().items():
            results[name].append(run_once(argv, env))
    return results


def render(results: dict[str, list[tuple[float, float]]]) -> str:
    lines = ["| command | wall ms median | min | max | peak RSS MiB (median) |", "|---|---:|---:|---:|---:|"]
    for name, values in results.items():
        walls = [wall * 1000 for wall, _ in values]
        rss = [peak for _, peak in values]
        lines.append(
            f"| `{name}` | {statistics.median(walls):,.0f} | {min(walls):,.0f} | {max(walls):,.0f} "
            f"| {statistics.median(rss):,.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    options = parser.parse_args()
    results = run(options.runs, options.redis)
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores\n")
    print(render(results))


if __name__ == "__main__":
    main()
