"""Deciding a target from interleaved rounds: median, interquartile range and a verdict."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

MET = "met"
NOT_MET = "not met"
UNDECIDED = "undecided (spread wider than the gap)"


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); one value is all three."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def verdict(ratios: Sequence[float], target: float) -> str:
    """ "met" when the whole interquartile range is at or above ``target``, "not met" when it is
    all below, otherwise undecided: the round-to-round spread is wider than the gap to the target.
    Higher ratios are better."""
    q1, _, q3 = quartiles(ratios)
    if q1 >= target:
        return MET
    if q3 < target:
        return NOT_MET
    return UNDECIDED


def verdict_at_most(values: Sequence[float], limit: float) -> str:
    """The same rule for a cost that must stay at or below ``limit`` (lower is better)."""
    q1, _, q3 = quartiles(values)
    if q3 <= limit:
        return MET
    if q1 > limit:
        return NOT_MET
    return UNDECIDED


def spread(values: Sequence[float], percent: bool = True) -> str:
    """``median [q1 to q3]``, as percentages or as plain numbers."""
    q1, median, q3 = quartiles(values)
    if percent:
        return f"{median:.1%} [{q1:.1%} to {q3:.1%}]"
    return f"{median:,.1f} [{q1:,.1f} to {q3:,.1f}]"
