"""``python -m benchmarks``: run every benchmark and print Markdown tables.

    python -m benchmarks [--quick] [--tasks 20000] [--rounds 5] [--brokers redis,amqp]
                         [--publish-tasks 5000] [--micro-scale 1.0] [--startup-runs 7]
                         [--only throughput,publish,micro,masking,startup]
                         [--plot docs/performance-throughput.png] [--markdown FILE]

Throughput (real workers, interleaved rounds), publish cost, micro-benchmarks, masking
(corpus recall and false positives, hostile 1 MB inputs) and start-up cost, in that order;
the tables go to stdout (and ``--markdown``), the throughput ratios to a PNG (``--plot``).
The last lines are one verdict per target of issue 15: "met", "not met" or "undecided
(spread wider than the gap)", decided on the interquartile range of the interleaved rounds.
``--quick`` (2,000 tasks x 4 rounds, publish and throughput only) takes a few minutes.
See docs/performance.md and docs/security.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from benchmarks import DEFAULT_AMQP, DEFAULT_REDIS, masking, micro, publish, startup, throughput

SECTIONS = ("throughput", "publish", "micro", "masking", "startup")


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from ``/proc/stat``; (0, 0) where there is none.

    Steal is time the hypervisor gave this VM's CPUs to someone else: on a shared VM it
    is the noise no interleaving can remove, so the run reports it.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks per drain (throughput)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (throughput, publish)")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 tasks x 4 rounds, publish and throughput, no plot"
    )
    parser.add_argument("--brokers", default="redis,amqp", help="comma-separated: redis, amqp")
    parser.add_argument("--publish-tasks", type=int, default=5_000, help="apply_async calls per round")
    parser.add_argument("--micro-scale", type=float, default=1.0, help="multiply micro-benchmark call counts")
    parser.add_argument("--startup-runs", type=int, default=7)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis: broker, state, ledger")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    parser.add_argument("--plot", default="docs/performance-throughput.png", help="'' for no plot")
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    parser.add_argument("--json", default=None, help="write every throughput round's figures here")
    options = parser.parse_args()
    if options.quick:
        options.tasks, options.rounds, options.publish_tasks = 2_000, 4, 2_000
        options.only, options.plot = "publish,throughput", ""

    sections = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}")
    brokers = [name.strip() for name in options.brokers.split(",") if name.strip()]
    urls = {"redis": options.redis, "amqp": options.amqp}
    if set(brokers) - set(urls):
        parser.error("--brokers takes redis and/or amqp")

    load = os.getloadavg()[0]
    steal_start, total_start = cpu_ticks()
    out: list[str] = [
        f"Command: `python -m benchmarks {shlex.join(sys.argv[1:])}`",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average at start {load:.2f}",
    ]

    def emit(title: str, table: str, seconds: float) -> None:
        out.extend(["", f"### {title} ({seconds:.0f} s)", "", table])
        print(f"\n### {title}\n\n{table}", flush=True)

    verdicts: list[str] = []
    if "throughput" in sections:
        started = time.monotonic()
        results = [
            throughput.run(urls[name], options.tasks, options.rounds, ledger_url=options.redis)
            for name in brokers
        ]
        emit(
            f"Drain throughput, {options.tasks:,} no-op tasks x {options.rounds} rounds, prefork -c 2",
            throughput.render(results),
            time.monotonic() - started,
        )
        verdicts += throughput.verdict_lines(results)
        if options.json:
            Path(options.json).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
        if options.plot:
            throughput.plot(results, options.plot)
            print(f"\nplot written to {options.plot}")
    if "publish" in sections:
        started = time.monotonic()
        rates = {
            name: publish.run(urls[name], options.publish_tasks, options.rounds, state_url=options.redis)
            for name in brokers
        }
        emit(
            f"Publish, {options.publish_tasks:,} apply_async calls x {options.rounds} rounds",
            publish.render(rates, options.publish_tasks),
            time.monotonic() - started,
        )
        verdicts = publish.verdict_lines(rates) + verdicts
    if "micro" in sections:
        started = time.monotonic()
        rows = micro.run(options.redis, options.amqp if "amqp" in brokers else None, options.micro_scale)
        emit("Micro-benchmarks, median of 7 timeit repeats", micro.render(rows), time.monotonic() - started)
    if "masking" in sections:
        started = time.monotonic()
        emit(
            "Masking corpus: recall and false positives",
            masking.render_corpus(masking.TRUE_POSITIVES_FILE, masking.FALSE_POSITIVES_FILE),
            time.monotonic() - started,
        )
        started = time.monotonic()
        emit(
            "Masking, hostile 1 MB inputs",
            masking.render_hostile(masking.hostile_rows()),
            time.monotonic() - started,
        )
    if "startup" in sections:
        started = time.monotonic()
        emit(
            f"Start-up, {options.startup_runs} interleaved runs each",
            startup.render(startup.run(options.startup_runs, options.redis)),
            time.monotonic() - started,
        )
    if verdicts:
        emit("Verdicts (issue 15)", "\n".join(f"- {line}" for line in verdicts), 0)
    steal_end, total_end = cpu_ticks()
    steal = (steal_end - steal_start) / max(total_end - total_start, 1)
    out.append(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}; CPU steal during the run: {steal:.1%}")
    if options.markdown:
        Path(options.markdown).write_text("\n".join(out) + "\n")
        print(f"\ntables written to {options.markdown}")


main()
