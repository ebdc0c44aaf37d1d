"""Masking: recall and false-positive rate on the corpus, and the cost of hostile megabytes.

    python -m benchmarks.masking [--true-positives FILE --false-positives FILE] [--repeat 3]

The corpus defaults to tests/data/secrets_*.json; pass another one in the same format (such as
one kept outside the repository) to score it the same way. Each hostile input is one megabyte
built to hit a rule's worst case; the table gives the median of ``--repeat`` runs. The
kilobyte figures (typical text, text with three secrets) are in ``python -m benchmarks.micro``.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import string
import time
from pathlib import Path

from celery_jobs_ext.masking import mask_text
from tests.masking_corpus import FALSE_POSITIVES_FILE, TRUE_POSITIVES_FILE, score

MB = 1_000_000


def _fill(unit: str) -> str:
    return (unit * (MB // len(unit) + 1))[:MB]


def hostile_inputs() -> dict[str, str]:
    """One megabyte each, aimed at the rules' worst cases."""
    rng = random.Random(1)
    base64_alphabet = string.ascii_letters + string.digits + "+/"
    words = " ".join("".join(rng.choice(base64_alphabet) for _ in range(32)) for _ in range(MB // 33 + 1))
    long_word = "".join(rng.choice(base64_alphabet) for _ in range(MB))
    return {
        "32-character base64-like words": words[:MB],
        "one base64-like word of 1 MB": long_word,
        "'a' x 1 MB": "a" * MB,
        "'A' x 1 MB": "A" * MB,
        "'=' x 1 MB": "=" * MB,
        "':' x 1 MB": ":" * MB,
        "'-' x 1 MB": "-" * MB,
        "key=value chain (password0=x0&...)": "&".join(f"password{i}=x{i}" for i in range(MB // 10))[:MB],
        "'password=' repeated": _fill("password="),
        "'token: ' repeated": _fill("token: "),
        "'Bearer ' repeated": _fill("Bearer "),
        "'Bearer x' repeated": _fill("Bearer x"),
        "'://a:b' repeated": _fill("://a:b"),
        "'://a:b@' repeated": _fill("://a:b@"),
        "'mysql -p' repeated": _fill("mysql -p"),
        "'--password ' repeated": _fill("--password "),
        "'-p x ' repeated": _fill("-p x "),
        "'curl -u a:' repeated": _fill("curl -u a:"),
        "'eyJ' repeated": _fill("eyJ"),
        "'-----BEGIN PRIVATE KEY-----' repeated": _fill("-----BEGIN PRIVATE KEY-----"),
        "'h:1:d:u:' repeated (.pgpass)": _fill("h:1:d:u:"),
        "'machine login password ' repeated": _fill("machine login password "),
        "'<password>' repeated": _fill("<password>"),
        "'%3a%2f%2f' repeated": _fill("%3a%2f%2f"),
        "'$2b$10$' repeated": _fill("$2b$10$"),
        "base64 of text, one word": base64.b64encode(b"hello world " * (MB // 16)).decode()[:MB],
        "'(' x 1 MB after password=": "password=" + "(" * MB,
        "'password=[' repeated": _fill("password=["),
        # Red team 2026-12-04: a lookup per run over every public PEM block was quadratic.
        "public PEM BEGIN lines, then one random run": _fill("-----BEGIN PUBLIC KEY-----\n")[: MB - 41]
        + "\n"
        + "".join(rng.choice(base64_alphabet) for _ in range(40)),
        "empty public PEM blocks, then random runs": (
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n" * (MB // 104) + words[: MB // 2]
        )[:MB],
        "'-aaa', repeated (an argv repr)": _fill("'-aaa',"),
        "'pw=1 ' repeated": _fill("pw=1 "),
        "'x: ' repeated, then '@'": _fill("x:") + "@",
        "'Bearer eyJ.' repeated": "Bearer " + _fill("eyJ."),
        "'key:' repeated": _fill("key:"),
        "'Basic ' repeated": _fill("Basic "),
        # Command lines outside the dash grammar (red-team round 1's open classes).
        "'net use x ' repeated": _fill("net use x "),
        "'<<< x ' repeated": _fill("<<< x "),
        "'echo x | ' repeated": _fill("echo x | "),
        "'sqlplus a/b ' repeated": _fill("sqlplus a/b "),
        "'xfreerdp /p:x ' repeated": _fill("xfreerdp /p:x "),
        # A space after '=' made each key look for its line's start: quadratic on one long line.
        "'pw= 1 ' repeated": _fill("pw= 1 "),
        "'password:\\n  x ' repeated (an escaped YAML value, one line)": _fill("password:\\n  x "),
        # Red team round 2: an ODBC braced value looked for its closing brace over 2 KB per key.
        "'pwd={a ' repeated": _fill("pwd={a "),
        "'password={{ a ' repeated": _fill("password={{ a "),
        "'Server=a;Pwd={a ' repeated": _fill("Server=a;Pwd={a "),
        "'pwd={a}} ' repeated (escaped braces, no end)": _fill("pwd={a}} "),
        "'{'password': ' repeated (a container under a key)": _fill("{'password': "),
        "'token: [' repeated": _fill("token: ["),
        "nested 'token=(' closed, then 'x' (a value going on after its container)": _fill(
            "token=(" * 250 + ")" * 250 + "x "
        ),
        "'password=[get(u) for ' repeated (code in a container)": _fill("password=[get(u) for "),
        "\"password 'x' \" repeated (SQL)": _fill("password 'x' "),
        "'identified by x ' repeated (SQL)": _fill("identified by x "),
        "\"x.connect('a', 1, 'b', 'c') \" repeated (positional passwords)": _fill(
            "x.connect('a', 1, 'b', 'c') "
        ),
        "'.login(' repeated": _fill(".login("),
        "'rabbitmqctl add_user a ' repeated (positional passwords)": _fill("rabbitmqctl add_user a "),
        "'redis-cli auth ' repeated": _fill("redis-cli auth "),
        "'<p name=\"password\">' repeated (elements named by an attribute)": _fill('<p name="password">'),
        "'<p a name=' repeated": _fill("<p a name="),
        "'password x1\\n' repeated (directive lines)": _fill("password x1\n"),
        "'\\n' x 1 MB after 'password'": "password" + "\n" * MB,
        '"password \'" repeated, unclosed (SQL)': _fill("password '"),
    }


def hostile_rows(repeat: int = 3) -> list[tuple[str, float]]:
    rows = []
    for name, text in hostile_inputs().items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            mask_text(text)
            times.append(time.perf_counter() - started)
        rows.append((name, statistics.median(times) * 1000))
    return rows


def render_corpus(true_positives: Path, false_positives: Path) -> str:
    scores = score(mask_text, true_positives, false_positives)
    lines = [
        "| corpus | entries | missed / changed | rate |",
        "|---|---:|---:|---:|",
        f"| secrets ({true_positives.name}) | {scores.secrets} | {len(scores.missed)} | "
        f"recall {scores.recall:.4f} |",
        f"| benign ({false_positives.name}) | {scores.benign} | {len(scores.false_positives)} | "
        f"false positives {scores.false_positive_rate:.4f} |",
    ]
    for case, masked, piece in scores.missed:
        lines.append(
            f"\nmissed ({case.get('source', '')}): {case['text'][:100]!r} -> {masked[:100]!r} ({piece!r})"
        )
    for case, masked in scores.false_positives:
        lines.append(f"\nfalse positive ({case.get('why', '')}): {case['text'][:100]!r} -> {masked[:100]!r}")
    return "\n".join(lines)


def render_hostile(rows: list[tuple[str, float]]) -> str:
    lines = ["| 1 MB input | ms (median) |", "|---|---:|"]
    lines += [f"| {name} | {millis:,.1f} |" for name, millis in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--true-positives", type=Path, default=TRUE_POSITIVES_FILE)
    parser.add_argument("--false-positives", type=Path, default=FALSE_POSITIVES_FILE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus-only", action="store_true")
    options = parser.parse_args()
    print(render_corpus(options.true_positives, options.false_positives))
    if not options.corpus_only:
        print()
        print(render_hostile(hostile_rows(options.repeat)))


if __name__ == "__main__":
    main()
