"""The classes red-team round 2 found (docs/security.md, "Red-team rounds"), one test per class:
the attacker's open cases of the class (tests/data/redteam_masking_round2_open.json) and our own
spellings of it. The secret disappears behind a mask; the look-alikes stay as they were."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from celery_jobs_ext.masking import mask_text
from celery_jobs_ext.masking.fields import braced_value_end

OPEN_CASES = Path(__file__).parent / "data" / "redteam_masking_round2_open.json"


def _open_cases(kind: str) -> list[dict[str, Any]]:
    return [case for case in json.loads(OPEN_CASES.read_text()) if case["class"] == kind]


def test_the_open_cases_file_keeps_its_format() -> None:
    for case in json.loads(OPEN_CASES.read_text()):
        assert {"class", "text", "got", "via"} <= set(case)
        assert ("expected_masked" in case) != ("expected_unchanged" in case)


# ---------------------------------------------------------------------------------------------
# SLOW: an ODBC braced value looked for its end over 2 KB at every "key={" (timing is in
# benchmarks/masking.py's hostile inputs; these prove the one-scan finder masks the same).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Driver={ODBC};Server=x;Pwd={P@ss w0rd;x};", "Driver={ODBC};Server=x;Pwd=***PASSWORD***;"),
        ("PWD={a}}b};x", "PWD=***PASSWORD***;x"),
        ("Pwd={P@ss w0rd}", "Pwd=***PASSWORD***"),
        ("Pwd={Xy 1}}};Uid=sa;Password={Zq 9};", "Pwd=***PASSWORD***;Uid=sa;Password=***PASSWORD***;"),
    ],
)
def test_odbc_braced_values_are_masked_whole_after_unclosed_ones(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_odbc_braced_values_are_found_alike_in_interleaved_texts_and_threads() -> None:
    first = "pwd={a " * 50 + "Pwd={Sec ret 1};"
    second = "Pwd={Oth er 2};" + "pwd={a " * 50
    results: list[str] = []

    def run() -> None:
        for _ in range(20):
            results.append(mask_text(first))
            results.append(mask_text(second))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160
    assert not any("Sec ret 1" in result or "Oth er 2" in result for result in results)


_REGEX_BRACED = re.compile(r"\{(?:[^}]|\}\})*\}(?=[;\s'\"]|$)")  # the old, quadratic check


@pytest.mark.parametrize(
    "text",
    [
        "pwd={a pwd={b}; pwd={c}}} pwd={d}}",
        "x={a}}}}b} y={}} z={{}}}' w={",
        "k={a}x k={b}}}}}}\tk={c} k={d}}}}",
        "{" * 40 + "}" * 41 + ";{a}",
    ],
)
def test_the_one_scan_brace_finder_ends_where_the_regex_did(text: str) -> None:
    starts = [index for index, char in enumerate(text) if char == "{"]
    for start in starts + starts[::-1] + starts:  # forward, back, forward: the cache is reset
        old = _REGEX_BRACED.match(text, start, len(text))
        assert braced_value_end(text, start, len(text)) == (old.end() if old else None), start
