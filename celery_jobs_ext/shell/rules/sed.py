"""sed: the script is parsed, and commands that run programs or write files are refused."""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

_SED_SIMPLE_COMMANDS = frozenset("=dDgGhHnNpPxzF}{")
_SED_FLAGS = frozenset("gpiImM0123456789")


class _SedScriptRefused(Exception):
    """Internal: the sed parser found a dangerous or unparseable construct."""


def _sed_delimited(script: str, index: int, delimiter: str, *, regex: bool, gnu: bool) -> int:
    """Skip a ``/text/`` part ending with ``delimiter``; return the index after it.

    ``gnu`` follows GNU sed 4.9, where a bracket expression and ``\\cX`` in a regex may hold
    the delimiter; older seds do not. Both readings are checked.
    """
    length = len(script)
    while index < length:
        char = script[index]
        if char == delimiter:
            return index + 1
        if char == "\\":
            index += 2 if not (gnu and regex and script.startswith("c", index + 1)) else 3
            continue
        if gnu and regex and char == "[":
            index = _sed_bracket_end(script, index + 1)
            continue
        index += 1
    raise _SedScriptRefused("an unterminated regular expression or replacement")


def _sed_bracket_end(script: str, index: int) -> int:
    """Skip a bracket expression as GNU sed's snarf_char_class does; return the index after it."""
    length = len(script)
    if script.startswith("^", index):
        index += 1
    if script.startswith("]", index):
        index += 1
    state, delimiter = 0, ""
    while index < length:
        char = script[index]
        index += 1
        if char in ".:=":
            if state == 1:
                state, delimiter = 2, char
                continue
            if state == 2 and char == delimiter:
                state = 3
                continue
        elif char == "[":
            if state == 0:
                state = 1
            continue
        elif char == "]":
            if state in (0, 1):
                return index
            if state == 3:
                state = 0
        state &= ~1
    raise _SedScriptRefused("an unterminated bracket expression")


def _sed_skip_blanks(script: str, index: int) -> int:
    while index < len(script) and script[index] in " \t":
        index += 1
    return index


def _sed_address(script: str, index: int, gnu: bool) -> int:
    """Skip one address (``12``, ``$``, ``/re/I``, ``\\cREc``, ``first~step``, ``+N``)."""
    if index >= len(script):
        return index
    char = script[index]
    if char in "/\\":
        if char == "\\":
            index += 1
            if index >= len(script):
                raise _SedScriptRefused("an address delimiter is missing")
        index = _sed_delimited(script, index + 1, script[index], regex=True, gnu=gnu)
        while True:
            index = _sed_skip_blanks(script, index)
            if script.startswith(("I", "M"), index):
                index += 1
                continue
            return index
    if char.isdigit() or char in "+~":
        index += 1
        while index < len(script) and (script[index].isdigit() or script[index] in " \t~"):
            index += 1
        return index
    if char == "$":
        return index + 1
    return index


# Files a 'w' command or flag may name: they write nowhere a message could use.
_HARMLESS_WRITE_FILES = frozenset({"/dev/stdout", "/dev/null"})


def _sed_write_file(script: str, index: int) -> tuple[str, int]:
    """The file name of a 'w' command or flag (the rest of the line) and where the line ends."""
    end = script.find("\n", index)
    end = len(script) if end < 0 else end
    return script[index:end].lstrip(" \t"), end


def _sed_script_problem(script: str, gnu: bool) -> str | None:
    """Return why a sed script is refused, or None when it only edits the stream."""
    index, length = 0, len(script)
    while True:
        while index < length and script[index] in " \t;":
            index += 1
        if index >= length:
            return None
        index = _sed_address(script, index, gnu)
        index = _sed_skip_blanks(script, index)
        if script.startswith(",", index):
            index = _sed_address(script, _sed_skip_blanks(script, index + 1), gnu)
            index = _sed_skip_blanks(script, index)
        if script.startswith("!", index):
            index = _sed_skip_blanks(script, index + 1)
        if index >= length:
            raise _SedScriptRefused("an address without a command")
        command = script[index]
        index += 1
        if command == "#" or command in "aic" or command in "rR":
            return None  # comment, text or file name up to the end of this script
        if command == "e":
            return "the 'e' command runs the pattern space or its argument as a shell command"
        if command in "wW":
            target, index = _sed_write_file(script, index)
            if target in _HARMLESS_WRITE_FILES:
                continue
            return f"the {command!r} command writes a file"
        if command in _SED_SIMPLE_COMMANDS:
            continue
        if command in "lLqQ":
            index = _sed_skip_blanks(script, index)
            while index < length and script[index].isdigit():
                index += 1
            continue
        if command in ":btTv":
            index = _sed_skip_blanks(script, index)
            while index < length and script[index] not in " \t;}#":
                index += 1
            continue
        if command == "y":
            if index >= length or script[index] in "\\\n":
                raise _SedScriptRefused("the 'y' command has no valid delimiter")
            delimiter = script[index]
            index = _sed_delimited(script, index + 1, delimiter, regex=False, gnu=gnu)
            index = _sed_delimited(script, index, delimiter, regex=False, gnu=gnu)
            continue
        if command == "s":
            if index >= length or script[index] in "\\\n":
                raise _SedScriptRefused("the 's' command has no valid delimiter")
            delimiter = script[index]
            index = _sed_delimited(script, index + 1, delimiter, regex=True, gnu=gnu)
            index = _sed_delimited(script, index, delimiter, regex=False, gnu=gnu)
            while index < length:
                flag = script[index]
                if flag == "e":
                    return "the 'e' flag of 's' runs the result as a shell command"
                if flag == "w":
                    target, index = _sed_write_file(script, index + 1)
                    if target in _HARMLESS_WRITE_FILES:
                        break
                    return "the 'w' flag of 's' writes a file"
                if flag in ";}#":
                    break
                if flag not in _SED_FLAGS and flag not in " \t":
                    raise _SedScriptRefused(f"an unknown flag {flag!r} of the 's' command")
                index += 1
            continue
        raise _SedScriptRefused(f"an unknown command {command!r}")


def _sed_scripts(arguments: Sequence[str]) -> list[str]:
    """The arguments GNU or POSIX sed would read as script text.

    Values of ``-e``/``--expression`` anywhere, plus the first operand unless an ``-e`` came
    before it: GNU sed permutes options, POSIX sed stops at the first operand, so both are
    checked.
    """
    scripts: list[str] = []
    first_operand: str | None = None
    expression_seen_before_operand = False
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == "--":
            if first_operand is None and index < len(arguments):
                first_operand = arguments[index]
            break
        if argument.startswith("--"):
            name, has_value, value = argument.partition("=")
            if len(name) > 2 and "--expression".startswith(name):
                if not has_value:
                    value = arguments[index] if index < len(arguments) else ""
                    index += 1
                scripts.append(value)
                expression_seen_before_operand |= first_operand is None
            elif len(name) > 2 and "--line-length".startswith(name) and not has_value:
                index += 1
            continue
        if argument.startswith("-") and len(argument) > 1:
            for position, letter in enumerate(argument[1:], start=2):
                if letter in "efl":
                    value = argument[position:]
                    if not value:
                        value = arguments[index] if index < len(arguments) else ""
                        index += 1
                    if letter == "e":
                        scripts.append(value)
                        expression_seen_before_operand |= first_operand is None
                    break
            continue
        if first_operand is None:
            first_operand = argument
    if first_operand is not None and not expression_seen_before_operand:
        scripts.append(first_operand)
    return scripts


def check_sed(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    literal = {arguments[position] for position in trusted}
    for script in _sed_scripts(arguments):
        if script in literal:
            continue  # a pattern spells this script out: the administrator wrote it
        for gnu in (True, False):
            try:
                problem = _sed_script_problem(script, gnu)
            except _SedScriptRefused as error:
                refuse(
                    f"the {program} script {script!r} has {error}; jobs.shell only runs sed "
                    "scripts it can check for commands that run programs or write files"
                )
            if problem:
                refuse(f"the {program} script {script!r} is refused: {problem}")
