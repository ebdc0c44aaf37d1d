"""curl and wget: where the download goes, and curl's ``%output{}`` write-out variable.

wget saves what it downloads as files in the working directory (which a message chooses), so
a bare-listed wget must send it to standard output (``-O -``) or only check (``--spider``);
an argument pattern that pins the command allows what it spells out. curl's ``-w`` can write
a file itself (``%output{file}``, curl 8.3+), or read its format from one (``-w @file``).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.rules.table import SHORT_OPTIONS_WITH_VALUES
from celery_jobs_ext.shell.syntax import refuse


def _option_values(arguments: Sequence[str], short: str, long: str, value_letters: str) -> list[str]:
    """Values given to ``-short``/``--long`` (glued, after ``=``, or the next word)."""
    values = []
    for position, argument in enumerate(arguments):
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if argument_matches(long, argument, value_letters, frozenset()):
            _, equals, value = argument.partition("=")
            values.append(value if equals else following)
        elif argument_matches(short, argument, value_letters, frozenset()):
            glued = argument[argument.index(short[1]) + 1 :]
            values.append(glued or following)
    return values


def check_wget(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a wget that would save files, unless an argument pattern pinned the command."""
    if pinned:
        return
    letters = SHORT_OPTIONS_WITH_VALUES["wget"]
    to_stdout = "-" in _option_values(arguments, "-O", "--output-document", letters)
    spider = any(argument_matches("--spider", argument, letters, frozenset()) for argument in arguments)
    if not (to_stdout or spider):
        refuse(
            f"{program!r} saves downloads as files in the working directory; add -O - to get the "
            "download as output (or --spider to only check), or pin the command with a pattern"
        )


def check_curl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a ``--write-out`` that writes a file or reads its format from one."""
    literal = {arguments[position] for position in trusted}
    for value in _option_values(arguments, "-w", "--write-out", SHORT_OPTIONS_WITH_VALUES["curl"]):
        if value in literal:
            continue
        if "%output{" in value.lower() or value.startswith("@"):
            refuse(
                f"the --write-out format {value!r} of {program!r} writes a file (%output{{...}}) or "
                "reads its format from one (@file)"
            )
