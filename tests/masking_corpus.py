"""The masking corpus (tests/data/secrets_*.json) and how mask_text is scored on it.

A secret counts as found when its mask label appears and no piece of it survives: neither the
whole value nor any six characters of it that the rest of the text does not also hold (so a
value cut in half, ``password=***PASSWORD***&3x``, is a miss). A benign string counts as a
false positive when mask_text changes it at all. The same scoring runs on any corpus in the
same format, such as one kept outside the repository:
``python -m benchmarks.masking --true-positives FILE --false-positives FILE``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
TRUE_POSITIVES_FILE = DATA / "secrets_true_positives.json"
FALSE_POSITIVES_FILE = DATA / "secrets_false_positives.json"
#: A surviving piece of a secret this long counts as a leak.
LEAK_PIECE = 6


def load(path: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))["cases"]
    return cases


_ANY_MASK = re.compile(r"\*\*\*[A-Z_]+\*\*\*")


def leak(case: dict[str, Any], masked: str) -> str | None:
    """What of the case's secret survives in ``masked`` (or the missing label); None if hidden.

    An external corpus may know only that a text holds a secret, not which part (no ``secret``)
    or not which mask (no ``label``): then any mask counts, and with a known secret no piece of
    it may survive."""
    text = case["text"]
    if "label" not in case and _ANY_MASK.search(masked) is None:
        return "no mask"
    if "secret" not in case:
        return None
    secret = case["secret"]
    if secret in masked:
        return secret
    if "label" in case and f"***{case['label']}***" not in masked:
        return f"no ***{case['label']}*** mask"
    rest = text.replace(secret, "\0")
    for index in range(len(secret) - LEAK_PIECE + 1):
        piece = secret[index : index + LEAK_PIECE]
        if piece in masked and piece not in rest:
            return piece
    return None


@dataclass
class Scores:
    secrets: int = 0
    benign: int = 0
    missed: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)
    false_positives: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / self.secrets if self.secrets else 1.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.benign if self.benign else 0.0


def score(
    mask_text: Callable[[str], str],
    true_positives: Path = TRUE_POSITIVES_FILE,
    false_positives: Path = FALSE_POSITIVES_FILE,
) -> Scores:
    scores = Scores()
    for case in load(true_positives):
        scores.secrets += 1
        masked = mask_text(case["text"])
        found = leak(case, masked)
        if found is not None:
            scores.missed.append((case, masked, found))
    for case in load(false_positives):
        scores.benign += 1
        masked = mask_text(case["text"])
        if masked != case["text"]:
            scores.false_positives.append((case, masked))
    return scores
