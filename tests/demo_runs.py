"""Run README's demo many times in a row while other processes keep every core busy.

    python -m tests.demo_runs [--runs 30] [--burners N]

Each run is ``python -m celery_jobs_ext.demo`` as a user starts it; a run passes when it
exits 0 and prints its closing line. Prints one line per run and a summary, and exits 1 if
any run failed (its output is printed). The last result is recorded in docs/testing.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from tests.harness import ROOT
from tests.test_embedded_broker import busy_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.demo_runs", description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="consecutive demo runs (default 30)")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="CPU-bound processes")
    options = parser.parse_args(argv)

    failures = 0
    durations: list[float] = []
    with busy_cpu(options.burners):
        for run in range(1, options.runs + 1):
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "celery_jobs_ext.demo"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            durations.append(time.monotonic() - started)
            passed = result.returncode == 0 and "Done: every task finished." in result.stdout
            print(f"run {run:2d}: {'pass' if passed else 'FAIL'} in {durations[-1]:.1f} s", flush=True)
            if not passed:
                failures += 1
                print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
    print(
        f"{options.runs - failures} passed, {failures} failed "
        f"({options.burners} CPU burners on {os.cpu_count()} cores; "
        f"median run {sorted(durations)[len(durations) // 2]:.1f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
