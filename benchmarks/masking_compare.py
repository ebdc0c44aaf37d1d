"""Masking cost of this tree beside another checkout, measured alternately in one process.

    python -m benchmarks.masking_compare --baseline /work/main [--hostile] [--rounds 3]

Each tree's ``celery_jobs_ext`` is imported in turn (the modules are dropped between them), so
both run on the same machine at the same moment: on a shared VM, figures taken minutes apart
differ by more than the changes being measured. Kilobyte rows: best of 7 x 3,000 calls per
round; hostile megabytes (``--hostile``, the inputs of :mod:`benchmarks.masking`): CPU time,
best of 3.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.masking import hostile_inputs
from benchmarks.micro import CLEAN_1K, SECRET_1K

HERE = Path(__file__).resolve().parent.parent


def load(root: Path) -> Callable[[str], str]:
    """``mask_text`` of the checkout at ``root``."""
    for name in [name for name in sys.modules if name.startswith("celery_jobs_ext")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("celery_jobs_ext.masking.text")
    finally:
        sys.path.remove(str(root))
    mask_text: Callable[[str], str] = module.mask_text
    return mask_text


def per_call(mask_text: Callable[[str], str], text: str, number: int) -> tuple[float, float]:
    mask_text(text)
    times = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(number):
            mask_text(text)
        times.append((time.perf_counter() - started) / number * 1e6)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hostile", action="store_true")
    options = parser.parse_args()
    trees = {"baseline": load(options.baseline), "this tree": load(HERE)}
    for round_number in range(options.rounds):
        for label, mask_text in trees.items():
            clean = per_call(mask_text, CLEAN_1K, 3000)
            secrets = per_call(mask_text, SECRET_1K, 3000)
            print(
                f"round {round_number} {label}: 1 KB clean {clean[0]:.1f} µs (median {clean[1]:.1f}), "
                f"3 secrets {secrets[0]:.1f} µs (median {secrets[1]:.1f})"
            )
    if options.hostile:
        print("\n| 1 MB input | baseline, ms | this tree, ms |\n|---|---:|---:|")
        for name, text in hostile_inputs().items():
            row = []
            for mask_text in trees.values():
                best = float("inf")
                for _ in range(3):
                    started = time.process_time()
                    mask_text(text)
                    best = min(best, time.process_time() - started)
                row.append(best * 1000)
            print(f"| {name} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
