"""sqlite3: dot-commands by an allow list, and SQL read as SQLite's tokenizer reads it; zip -TT.

The sqlite3 shell runs an argument starting with ``.`` as a dot-command, and accepts a prefix
of a command's name (``.sh`` is ``.shell``), so dot-commands pass only when their name is one
of :data:`SAFE_DOT_COMMANDS`, spelled out. Any other argument is SQL: it is tokenised with
SQLite's rules (``'...'`` strings, ``"..."``, ``[...]`` and backquoted identifiers, ``--``
and ``/* */`` comments), so a name inside a string literal is text, and a function name
written with a comment or quotes before its parenthesis is still that function.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from celery_jobs_ext.shell.rules.table import REFUSAL_REASONS
from celery_jobs_ext.shell.syntax import refuse

SAFE_DOT_COMMANDS = frozenset(
    {
        "tables", "schema", "fullschema", "indexes", "indices", "databases", "dbinfo", "headers",
        "header", "mode", "width", "nullvalue", "separator", "show", "help", "timer", "changes",
        "stats", "eqp", "print", "bail", "echo", "dump", "lint", "quit", "exit", "explain",
        "limits", "parameter", "selftest", "sha3sum", "version",
    }
)  # fmt: skip
"""Dot-commands that only read the database or change how results are printed."""

# Functions and statements that run programs, load code or write files other than the database.
_REFUSED_WORDS = frozenset(
    {
        "writefile", "edit", "load_extension", "fts3_tokenizer", "zipfile", "sqlar_compress",
        "sqlar_uncompress", "attach", "detach", "readfile", "lsdir", "fsdir",
    }
)  # fmt: skip
_OPTION_VALUES = frozenset(
    {"-separator", "-newline", "-nullvalue", "-vfs", "-mmap", "-maxsize", "-lookaside", "-pagecache",
     "-heap", "-escape"}
)  # fmt: skip
_REFUSED_OPTIONS = ("-cmd", "-init", "-A", "-archive", "-interactive", "-deserialize", "-zip")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class _SqlRefused(Exception):
    """Internal: the SQL cannot be tokenised."""


def _sql_tokens(sql: str) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, text)``: ``word`` (identifier, lower case), ``string``, ``(`` or ``other``."""
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char.isspace():
            index += 1
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            index = length if end < 0 else end + 1
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            index = length if end < 0 else end + 2  # SQLite accepts an unterminated comment
        elif char in "'\"`[":
            closing = "]" if char == "[" else char
            end = index + 1
            text: list[str] = []
            while True:
                found = sql.find(closing, end)
                if found < 0:
                    raise _SqlRefused(f"an unterminated {char} quote")
                text.append(sql[end:found])
                if closing != "]" and sql.startswith(closing * 2, found):
                    text.append(closing)
                    end = found + 2
                    continue
                index = found + 1
                break
            yield ("string" if char == "'" else "word", "".join(text).lower())
        elif char == "(":
            index += 1
            yield ("(", "(")
        else:
            word = _WORD.match(sql, index)
            if word:
                index = word.end()
                yield ("word", word.group().lower())
            else:
                index += 1
                yield ("other", char)


def _sql_problem(sql: str) -> str | None:
    try:
        tokens = list(_sql_tokens(sql))
    except _SqlRefused as error:
        return f"has {error}"
    for position, (kind, text) in enumerate(tokens):
        following = tokens[position + 1] if position + 1 < len(tokens) else ("", "")
        if kind == "word" and text in _REFUSED_WORDS:
            return f"uses {text!r}, which runs a program, loads code or reads or writes other files"
        if kind == "string" and text in _REFUSED_WORDS and following[0] == "(":
            return f"calls {text!r}, which runs a program, loads code or reads or writes other files"
        if kind == "word" and text == "vacuum" and any(t == ("word", "into") for t in tokens[position + 1 :]):
            return "uses VACUUM INTO, which writes another file"
    return None


def _check_command_text(program: str, argument: str) -> None:
    stripped = argument.lstrip()
    if stripped.startswith("."):
        name = stripped[1:].split(None, 1)[0] if stripped[1:].strip() else ""
        if name.lower() not in SAFE_DOT_COMMANDS:
            refuse(
                f"argument {argument!r} of {program!r} is the dot-command {'.' + name!r}; only "
                f"{', '.join('.' + safe for safe in sorted(SAFE_DOT_COMMANDS))} are allowed, "
                "spelled out"
            )
        return
    problem = _sql_problem(argument)
    if problem:
        refuse(f"the SQL {argument!r} given to {program!r} {problem}")


def check_sqlite(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse options that run commands or read scripts, unsafe dot-commands and file-touching SQL.

    Words a pattern spells out are the administrator's; a wildcard word is checked as the
    command text it is, also as the value of a pinned ``-cmd``.
    """
    expect = ""  # what the next word is: "", "value" (skipped) or "command"
    database_seen = False
    for position, argument in enumerate(arguments):
        literal = position in trusted
        if expect:
            if expect == "command" and not literal:
                _check_command_text(program, argument)
            expect = ""
            continue
        if argument.startswith("-"):
            option = argument[1:] if argument.startswith("--") else argument
            if not literal and (option.startswith("-A") or option.split("=", 1)[0] in _REFUSED_OPTIONS):
                refuse(
                    f"argument {argument!r} of {program!r} runs dot-commands, reads a script or "
                    "opens an archive; pass SQL as an argument instead"
                )
            expect = "value" if option in _OPTION_VALUES or option == "-init" else ""
            expect = "command" if option == "-cmd" else expect
            continue
        if not database_seen:
            database_seen = True  # the database file name, not SQL
            continue
        if not literal:
            _check_command_text(program, argument)


def check_zip(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """zip's own option parser also takes -TT's value glued (``-TTcmd``) or inside a cluster."""
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("--") and "TT" in argument:
            refuse(f"argument {argument!r} of {program!r} uses -TT, which {REFUSAL_REASONS['zip']}")
