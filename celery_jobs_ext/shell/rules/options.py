"""Matching an argument against a refused-option entry (``--name``, ``-x``, ``-word``, ``+``, ``word=``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from celery_jobs_ext.shell.rules.table import (
    DEFAULT_REFUSAL_REASON,
    DENIED_ARGUMENTS,
    DENIED_SETTING,
    LONG_OPTION_EXCEPTIONS,
    REFUSAL_REASONS,
    SHORT_OPTIONS_WITH_VALUES,
)
from celery_jobs_ext.shell.syntax import refuse


def argument_matches(entry: str, argument: str, value_letters: str, exceptions: frozenset[str]) -> bool:
    """Whether ``argument`` uses the denied option ``entry`` (see the module docstring)."""
    if entry.startswith("--"):
        if not argument.startswith("--") or argument == "--":
            return False
        name = argument.split("=", 1)[0]
        if name == entry:
            return True
        return len(name) > 2 and entry.startswith(name) and name not in exceptions
    if entry.startswith("-") and len(entry) == 2:
        if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
            return False
        for letter in argument[1:]:
            if letter == entry[1]:
                return True
            if letter in value_letters:
                return False
        return False
    if entry.startswith("-"):
        return argument == entry or argument.startswith(entry + "=")
    if entry.startswith("+") or entry.endswith("="):
        return argument.startswith(entry)
    return argument == entry


def check_denied_arguments(
    program: str,
    names: set[str],
    arguments: Sequence[str],
    configured: Mapping[str, Sequence[str]],
    *,
    trusted: frozenset[int] = frozenset(),
) -> None:
    """Refuse the first argument that uses an option of the built-in or configured table."""
    value_letters = "".join(SHORT_OPTIONS_WITH_VALUES.get(name, "") for name in names)
    exceptions = frozenset().union(*(LONG_OPTION_EXCEPTIONS.get(name, ()) for name in names))
    candidates: list[tuple[str, str, str | None]] = []  # (name, entry, configured name)
    for name in sorted(names):
        candidates += [(name, entry, None) for entry in DENIED_ARGUMENTS.get(name, ())]
        candidates += [(name, entry, name) for entry in configured.get(name, ())]
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        matches = [
            candidate
            for candidate in candidates
            if argument_matches(candidate[1], argument, value_letters, exceptions)
        ]
        if not matches:
            continue
        # Name the entry the argument spells out (--exec) over one it abbreviates (--exec-path).
        exact = [match for match in matches if argument.split("=", 1)[0] == match[1]]
        name, entry, configured_name = (exact or matches)[0]
        if configured_name is not None:
            why = f"which {DENIED_SETTING} denies for {configured_name!r}"
        else:
            why = f"which {REFUSAL_REASONS.get(name, DEFAULT_REFUSAL_REASON)}"
        refuse(f"argument {argument!r} of {program!r} matches {entry!r}, {why}")
    if (
        "tar" in names
        and arguments
        and arguments[0]
        and not arguments[0].startswith("-")
        and 0 not in trusted
    ):
        # Old-style tar options: the first argument is a cluster of letters without a dash.
        letters = set(arguments[0])
        for entry in (*DENIED_ARGUMENTS["tar"], *configured.get("tar", ())):
            if len(entry) == 2 and entry[0] == "-" and entry[1] in letters:
                refuse(
                    f"argument {arguments[0]!r} of {program!r} uses the old-style option "
                    f"{entry[1]!r} ({entry}), which {REFUSAL_REASONS['tar']}"
                )
