"""awk: the program text is checked for system(), pipes, @load/@include and output redirection."""

from __future__ import annotations

import re
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

_AWK_SYSTEM = re.compile(r"\bsystem\b")
_AWK_AT_NAME = re.compile(r"@\s*[A-Za-z_]")
_AWK_PRINT = re.compile(r"\bprintf?\b")
_AWK_PIPES = re.compile(r"\|+")


def _awk_programs(arguments: Sequence[str]) -> list[str]:
    """The arguments awk reads as program text: ``-e``/``--source`` values or the first operand.

    awk stops parsing options at the first operand, which is the program unless ``-e`` gave
    one (``-f`` and ``-E`` are refused anyway).
    """
    programs: list[str] = []
    program_given = False
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == "--":
            break
        if argument.startswith("--"):
            name, has_value, value = argument.partition("=")
            takes_value = any(
                len(name) > 2 and option.startswith(name)
                for option in ("--source", "--field-separator", "--assign", "--file",
                               "--exec", "--include", "--load")
            )  # fmt: skip
            if takes_value and not has_value:
                value = arguments[index] if index < len(arguments) else ""
                index += 1
            if len(name) > 3 and "--source".startswith(name):
                programs.append(value)
                program_given = True
            continue
        if argument.startswith("-") and len(argument) > 1:
            for position, letter in enumerate(argument[1:], start=2):
                if letter in "FvfeEilWZ":
                    value = argument[position:]
                    if not value:
                        value = arguments[index] if index < len(arguments) else ""
                        index += 1
                    if letter == "e":
                        programs.append(value)
                        program_given = True
                    break
                if letter in "dDLop":
                    break  # optional value glued to the letter
            continue
        index -= 1
        break
    if not program_given and index < len(arguments):
        programs.append(arguments[index])
    return programs


def _awk_program_problem(program_text: str) -> str | None:
    if _AWK_SYSTEM.search(program_text):
        return "system() runs a shell command"
    for pipe in _AWK_PIPES.finditer(program_text):
        if len(pipe.group()) != 2:
            return "'|' pipes to or from a command (use grep -E for alternatives)"
    if _AWK_AT_NAME.search(program_text):
        return "'@' loads extensions, includes files or calls a function by name"
    first_print = _AWK_PRINT.search(program_text)
    if first_print and ">" in program_text[first_print.end() :]:
        return "'>' after print or printf redirects output to a file"
    return None


def check_awk(program: str, arguments: Sequence[str], pinned: bool = False) -> None:
    for program_text in _awk_programs(arguments):
        problem = _awk_program_problem(program_text)
        if problem:
            refuse(f"the {program} program {program_text!r} is refused: {problem}")
