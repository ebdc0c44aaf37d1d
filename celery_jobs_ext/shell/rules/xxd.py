"""xxd: ``xxd [options] [infile [outfile]]`` writes its second operand as a file.

So a bare-listed xxd may have at most one operand besides ``-``, ``/dev/stdout`` and
``/dev/null`` (``xxd -r`` turns hex text back into any bytes, so the output file would hold
what the message chose).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.rules.options import HARMLESS_OUTPUTS
from celery_jobs_ext.shell.syntax import refuse

# Options that take a value (-c 8, -c8, -cols 8, -len=16 ...), by their first letter.
_VALUE_LETTERS = frozenset("cglnos")


def check_xxd(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse an output operand: xxd writes its second operand as a file."""
    operands: list[int] = []
    position = 0
    options_done = False
    while position < len(arguments):
        argument = arguments[position]
        if not options_done and argument == "--":
            options_done = True
        elif not options_done and argument.startswith("-") and argument != "-":
            name = argument.lstrip("-")
            if name[:1] in _VALUE_LETTERS and "=" not in name and not any(c.isdigit() for c in name):
                position += 1  # the value is the next word
        else:
            operands.append(position)
        position += 1
    for index in operands[1:]:
        if index not in trusted and arguments[index] not in HARMLESS_OUTPUTS:
            refuse(
                f"argument {arguments[index]!r} of {program!r} is xxd's output file, which it "
                "writes (xxd -r writes any bytes); use standard output, or pin the command with a pattern"
            )
