"""make: no variable assignments on the command line.

``make SHELL=/path/prog``, ``make CC='touch x'`` or ``make 'X!=command'`` replace what any
recipe runs, so a word with ``=`` that is not an option is refused (``-f``, ``-I`` and
``--eval`` are in the table).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse


def check_make(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse variable assignments on make's command line: they override SHELL, recipes, anything."""
    for position, argument in enumerate(arguments):
        if position not in trusted and not argument.startswith("-") and "=" in argument:
            refuse(
                f"argument {argument!r} of {program!r} is a variable assignment, which can replace "
                "the shell or any recipe the makefile runs (SHELL=..., CC=..., VAR!=command)"
            )
