"""awk: the program is tokenised, then system(), pipes, ``@`` and print redirections are refused.

And what reads a file whose name the program computes (round 6: ``getline < f`` with ``f =
"/pr" "oc/<pid>/environ"``, ``ARGV[1] = ...``): ``getline <`` anything but one string literal,
any use of ``ARGV`` or ``ARGC``, and gawk's network special files ``/inet...`` (as a string in
the program or an operand), so the rule on ``/proc`` paths sees every name awk may open.

Strings and regular expressions are skipped as awk reads them, so ``"a>b"`` in a string or a
comparison ``$3 > 100`` is not a redirection; ``print x > "file"`` (at the print's own
parenthesis level) is, except to ``/dev/stdout`` and ``/dev/stderr``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse


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


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Whether a '/' divides or starts a regular expression depends on awk's parser state. After
# the ')' that closes the header of if, while or for, a statement starts, so '/' starts a
# regular expression (``if (x) /re/``). Elsewhere two readings are made: the first takes '/' as
# division after anything that ends an operand; the second takes it as division everywhere
# except where only an expression can start. A program the two read differently is refused:
# the checker accepts only what it reads one way (awk might read it the other).
_HEADER_END = ")header"
_HEADER_KEYWORDS = frozenset({"if", "while", "for"})
_OPERAND_ENDS = frozenset({"name", "number", "string", "regex", ")", "]", "postfix"})
_EXPRESSION_STARTS = frozenset(
    {"", "(", ",", "{", "}", ";", "~", "!~", "!", "&&", "||", "=", "==", "!=", _HEADER_END}
)
_KEYWORDS = frozenset(
    {"BEGIN", "END", "BEGINFILE", "ENDFILE", "function", "func", "if", "else", "while", "for", "do",
     "break", "continue", "next", "nextfile", "exit", "return", "delete", "in", "getline",
     "print", "printf", "case", "default", "switch"}
)  # fmt: skip
_OUTPUT_STANDARD = frozenset({"/dev/stdout", "/dev/stderr", "-"})


class _AwkRefused(Exception):
    """Internal: the program cannot be tokenised."""


def _skip_quoted(text: str, index: int, closing: str) -> tuple[int, str]:
    """From after an opening quote or slash, return the index after the closing one and the content."""
    start, brackets = index, False
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if closing == "/" and char == "[":
            brackets = True
        elif closing == "/" and char == "]":
            brackets = False
        elif char == closing and not brackets:
            return index + 1, text[start:index]
        index += 1
    raise _AwkRefused("an unterminated string or regular expression")


def _regex_starts(previous: tuple[str, str], cautious: bool) -> bool:
    if previous[1] == _HEADER_END:
        return True
    if cautious:
        return previous[1] in _EXPRESSION_STARTS or (previous[0] == "name" and previous[1] in _KEYWORDS)
    return not (previous[0] in _OPERAND_ENDS and previous[1] not in _KEYWORDS)


def _awk_tokens(text: str, cautious: bool) -> list[tuple[str, str]]:
    """Tokenise an awk program: names, numbers, strings, regular expressions and operators."""
    tokens: list[tuple[str, str]] = []
    headers: list[bool] = []  # for each open '(': whether it opens an if/while/for header
    index = 0
    while index < len(text):
        char = text[index]
        previous = tokens[-1] if tokens else ("", "")
        if char in " \t":
            index += 1
        elif char == "#":
            break  # a comment runs to the end of the line, and a command is one line
        elif char == '"':
            index, content = _skip_quoted(text, index + 1, '"')
            tokens.append(("string", content))
        elif char == "/" and _regex_starts(previous, cautious):
            index, content = _skip_quoted(text, index + 1, "/")
            tokens.append(("regex", content))
        elif (name := _NAME.match(text, index)) is not None:
            tokens.append(("name", name.group()))
            index = name.end()
        elif (number := _NUMBER.match(text, index)) is not None:
            tokens.append(("number", number.group()))
            index = number.end()
        else:
            two = text[index : index + 2]
            operator = (
                two if two in ("||", "&&", ">>", ">=", "|&", "++", "--", "==", "!=", "<=", "!~") else char
            )
            if operator in ("++", "--") and previous[0] in _OPERAND_ENDS:
                tokens.append(("postfix", operator))
            elif operator == "(":
                headers.append(previous[0] == "name" and previous[1] in _HEADER_KEYWORDS)
                tokens.append(("operator", operator))
            elif operator == ")" and headers and headers.pop():
                tokens.append((")", _HEADER_END))
            else:
                tokens.append((operator if operator in ")]" else "operator", operator))
            index += len(operator)
    return tokens


def _awk_program_problem(program_text: str) -> str | None:
    """Why the program is refused (it runs a command, loads code, writes a file), or None."""
    readings = []
    for cautious in (False, True):
        try:
            tokens = _awk_tokens(program_text, cautious)
        except _AwkRefused as error:
            return f"it has {error}"
        problem = _tokens_problem(tokens)
        if problem:
            return problem
        readings.append(tokens)
    if readings[0] != readings[1]:
        return (
            "a '/' in it may be a division or the start of a regular expression, and jobs.shell "
            "accepts only programs it reads one way (put the expression in parentheses)"
        )
    return None


_VALUE_ENDS = frozenset({"string", "name", "number", "regex", "("})


def _getline_source(tokens: list[tuple[str, str]], position: int) -> tuple[str, str] | None:
    """After ``getline`` at ``position``: its ``<`` source, ``("", "")`` if not a single
    string literal, ``None`` when it reads no file (``getline``, ``getline var``)."""
    index = position + 1
    if index < len(tokens) and tokens[index] == ("operator", "$"):
        index += 2  # getline $1 < f
    elif index < len(tokens) and tokens[index][0] == "name" and tokens[index][1] not in _KEYWORDS:
        index += 1  # getline line < f, getline a[i] < f
        if index < len(tokens) and tokens[index] == ("operator", "["):
            level = 0
            while index < len(tokens):
                level += {"[": 1, "]": -1}.get(tokens[index][1], 0)
                index += 1
                if level == 0:
                    break
    if index >= len(tokens) or tokens[index] != ("operator", "<"):
        return None
    target = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
    after = tokens[index + 2] if index + 2 < len(tokens) else ("operator", ";")
    if target[0] != "string" or after[0] in _VALUE_ENDS or after == ("operator", "$"):
        return ("", "")
    return target


def _tokens_problem(tokens: list[tuple[str, str]]) -> str | None:
    in_print = False
    depth = 0
    for position, (kind, text) in enumerate(tokens):
        if kind == "string" and text.startswith("/inet"):
            return "'/inet' special files open network connections"
        if kind == "name" and text in ("ARGV", "ARGC"):
            return f"{text} names the files awk reads, so a program could read one it computes"
        if kind == "name" and text == "getline" and _getline_source(tokens, position) == ("", ""):
            return (
                "'getline <' reads the file its expression names, which jobs.shell cannot check "
                "unless it is one string literal"
            )
        if kind == "name" and text == "system":
            return "system() runs a shell command"
        if kind == "operator" and text in ("|", "|&"):
            return "'|' pipes to or from a command (use grep -E for alternatives)"
        if kind == "operator" and text == "@":
            return "'@' loads extensions, includes files or calls a function by name"
        if kind == "name" and text in ("print", "printf"):
            in_print, depth = True, 0
        elif kind == "operator" and text in ";{}":
            in_print = False
        elif kind == "operator" and text == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
        elif in_print and depth <= 0 and kind == "operator" and text in (">", ">>"):
            target = tokens[position + 1] if position + 1 < len(tokens) else ("", "")
            after = tokens[position + 2] if position + 2 < len(tokens) else ("operator", ";")
            ends = after[0] == "operator" and after[1] in ";}"
            if not (target[0] == "string" and target[1] in _OUTPUT_STANDARD and ends):
                return "'>' after print or printf redirects output to a file"
    return None


def check_awk(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    literal = {arguments[position] for position in trusted}
    for position, argument in enumerate(arguments):
        value = argument.partition("=")[2] if "=" in argument else argument
        assigned = argument.removeprefix("--assign=").removeprefix("-v")
        if position not in trusted and (value.startswith("/inet") or assigned.startswith(("ARGV[", "ARGC="))):
            refuse(
                f"the {program} argument {argument!r} is refused: it opens a network connection "
                "or sets the files awk reads"
            )
    for program_text in _awk_programs(arguments):
        if program_text in literal:
            continue  # a pattern spells this program out: the administrator wrote it
        problem = _awk_program_problem(program_text)
        if problem:
            refuse(f"the {program} program {program_text!r} is refused: {problem}")
