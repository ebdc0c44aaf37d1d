"""Parsing: turn a command string into words the way a POSIX shell would, refusing shell syntax.

A "the first word must be in the list" check is not a whitelist when the string then goes to
a shell: ``ls; rm -rf /``, ``ls $(id)`` all start with an allowed word. So the command is
tokenised like a POSIX shell and every piece of shell syntax is *refused* instead of passed on
as text (the rules are listed in docs/security.md). Imports nothing from Celery.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NoReturn

from celery_jobs_ext.errors import ShellCommandNotAllowed

MAX_COMMAND_LENGTH = 8192
"""Longest command, in characters, that :func:`split_command` examines (8 KiB)."""

_SHELL_KEYWORDS = frozenset(
    {
        "!", "{", "}", "[[", "]]", "case", "coproc", "do", "done", "elif", "else", "esac",
        "fi", "for", "function", "if", "in", "select", "then", "time", "until", "while",
    }
)  # fmt: skip
_SHELL_BUILTINS = frozenset(
    {
        ".", ":", "alias", "bg", "bind", "break", "builtin", "cd", "command", "compgen",
        "complete", "continue", "declare", "disown", "enable", "eval", "exec", "exit",
        "export", "fc", "fg", "getopts", "hash", "history", "jobs", "let", "local",
        "logout", "mapfile", "popd", "pushd", "read", "readarray", "readonly", "return",
        "set", "shift", "shopt", "source", "suspend", "trap", "type", "typeset", "ulimit",
        "umask", "unalias", "unset", "wait",
    }
)  # fmt: skip


_PROGRAM_NAME = re.compile(r"[A-Za-z0-9._+-]+\Z")
_PROGRAM_PATH = re.compile(r"[A-Za-z0-9._+/-]+\Z")
_ASSIGNMENT_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def refuse(message: str) -> NoReturn:
    """Raise the one error every refusal uses, with the common prefix."""
    raise ShellCommandNotAllowed(f"Command refused: {message}")


def refuse_syntax(token: str, description: str, *, where: str = "", quotable: bool = True) -> NoReturn:
    """Refuse a piece of shell syntax, naming it and what it would have done."""
    hint = " (put it in single quotes to pass it as a literal argument)" if quotable else ""
    refuse(
        f"{token!r}{where} ({description}) is shell syntax; jobs.shell runs one program without a shell{hint}"
    )


# -- characters --------------------------------------------------------------------------

_INVISIBLE_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (zero-width or bidirectional control) "
    "that makes the command read differently from what runs",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Zs": "a space look-alike",
    "Co": "a private-use character",
    "Cs": "a surrogate code point",
    "Cn": "an unassigned code point",
}


def _describe_character(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _check_characters(command: str) -> None:
    """Refuse control, invisible and space look-alike characters anywhere in the command."""
    for index, char in enumerate(command):
        code = ord(char)
        if 32 <= code < 127:
            continue
        if char == "\t":
            continue  # tabs separate words; _split_words refuses one inside quotes
        if char == "\n":
            if index and command[index - 1] == "\\":
                refuse_syntax("\\\n", "line continuation", quotable=False)
            refuse_syntax("\n", "newline, a command separator", quotable=False)
        if char == "\r":
            refuse_syntax("\r", "carriage return, a line break", quotable=False)
        if char == "\x00":
            refuse("a NUL character cannot be part of a program's arguments")
        category = unicodedata.category(char)
        if category in _INVISIBLE_CATEGORIES:
            refuse(
                f"character {_describe_character(char)} is {_INVISIBLE_CATEGORIES[category]}; "
                "such characters are refused anywhere in a command"
            )


# -- tokenising --------------------------------------------------------------------------

_OPERATORS: tuple[tuple[str, str], ...] = (
    ("&&", "conditional chaining"), ("&>>", "redirection"), ("&>", "redirection"),
    ("&", "background execution"),
    ("||", "conditional chaining"), ("|&", "pipe"), ("|", "pipe"),
    (";;", "command chaining"), (";", "command chaining"),
    ("<<<", "here-string"), ("<<-", "here-document"), ("<<", "here-document"),
    ("<(", "process substitution"), ("<&", "redirection"), ("<>", "redirection"),
    ("<", "redirection"),
    (">(", "process substitution"), (">>", "redirection"), (">&", "redirection"),
    (">|", "redirection"), (">", "redirection"),
    ("(", "subshell or grouping"), (")", "subshell or grouping"),
    ("`", "command substitution"),
    ("$((", "arithmetic expansion"), ("$(", "command substitution"),
    ("${", "parameter expansion"), ("$'", "ANSI-C quoting"), ('$"', "locale translation"),
    ("*", "filename globbing"), ("?", "filename globbing"), ("[", "filename globbing"),
    ("{", "brace expansion or grouping"), ("}", "brace expansion or grouping"),
)  # fmt: skip
_UNQUOTED_SPECIAL = frozenset(";&|<>()`$*?[{}")
# A brace pair no shell expands: inside a word, a plain name between (bash expands only a
# comma list or a {a..b} sequence). What follows is read as usual ({c,d} after it is refused).
_LITERAL_BRACES = re.compile(r"\{[A-Za-z0-9_.:+-]*\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _refuse_unquoted(command: str, index: int, current: list[str], quoted: bool) -> NoReturn:
    """Refuse the shell syntax starting at ``command[index]``, naming the whole operator."""
    char = command[index]
    if char == "$":
        name = _VARIABLE_NAME.match(command, index + 1)
        if name:
            refuse_syntax("$" + name.group(), "variable expansion")
        following = command[index + 1 : index + 2]
        if following and following in "0123456789@*#?$!-":
            refuse_syntax("$" + following, "special parameter expansion")
    for token, description in _OPERATORS:
        if command.startswith(token, index):
            if char in "<>" and current and not quoted and "".join(current).isdigit():
                token = "".join(current) + token  # 2>, 1>&2: a redirection of a numbered fd
            refuse_syntax(token, description)
    refuse_syntax(char, "parameter expansion")


def _read_double_quoted(command: str, index: int, current: list[str]) -> int:
    """Append the double-quoted text starting at ``index`` to ``current``; return the end."""
    length = len(command)
    while index < length:
        char = command[index]
        if char == '"':
            return index + 1
        if char == "\\" and index + 1 < length and command[index + 1] in '$`"\\':
            current.append(command[index + 1])
            index += 2
            continue
        if char == "$":
            syntax = command[index : index + 2]
            if syntax not in ("$(", "${"):
                syntax = "$"
            description = "command substitution" if syntax == "$(" else "parameter expansion"
            refuse_syntax(syntax, description, where=" inside double quotes")
        if char == "`":
            refuse_syntax("`", "command substitution", where=" inside double quotes")
        if char == "\t":
            refuse("a tab inside quotes is a control character; use a space")
        current.append(char)
        index += 1
    refuse("the command has an unterminated double quote")


def _split_words(command: str) -> list[str]:
    """Split ``command`` into words like a POSIX shell, refusing anything a shell would expand.

    One pass over the string, so its cost is linear in the length whatever the input.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quoted = False  # the current word has a quoted or escaped part
    previous_unquoted = ""  # the last character added outside quotes, for "~ after ="
    index, length = 0, len(command)
    while index < length:
        char = command[index]
        if char in " \t":
            if in_word:
                words.append("".join(current))
                current, in_word, quoted = [], False, False
            previous_unquoted = ""
            index += 1
            continue
        if char == "'":
            end = command.find("'", index + 1)
            if end < 0:
                refuse("the command has an unterminated single quote")
            text = command[index + 1 : end]
            if "\t" in text:
                refuse("a tab inside quotes is a control character; use a space")
            current.append(text)
            in_word, quoted, previous_unquoted = True, True, ""
            index = end + 1
            continue
        if char == '"':
            index = _read_double_quoted(command, index + 1, current)
            in_word, quoted, previous_unquoted = True, True, ""
            continue
        if char == "\\":
            if index + 1 >= length:
                refuse("the command ends with a backslash that escapes nothing")
            escaped = command[index + 1]
            if escaped == "\t":
                refuse("an escaped tab is a control character; use a space")
            current.append(escaped)
            in_word, quoted, previous_unquoted = True, True, ""
            index += 2
            continue
        if char == "{" and not in_word and command.startswith("{}", index):
            after = command[index + 2 : index + 3]
            if after in ("", " ", "\t"):
                current.append("{}")  # the literal word {}, as every shell passes it
                in_word, previous_unquoted = True, "}"
                index += 2
                continue
        if char == "{" and in_word:
            literal = _LITERAL_BRACES.match(command, index)
            if literal and ".." not in literal.group():
                # curl's -w %{http_code}, git's HEAD@{1}: no comma, no '..', inside a word,
                # so bash passes it as it is (and sh has no brace expansion at all)
                current.append(literal.group())
                previous_unquoted = "}"
                index = literal.end()
                continue
        if char in _UNQUOTED_SPECIAL:
            _refuse_unquoted(command, index, current, quoted)
        if char == "~" and (
            not in_word
            or previous_unquoted == "="
            or (previous_unquoted == ":" and _ASSIGNMENT_PREFIX.match("".join(current)))
        ):
            refuse_syntax("~", "home-directory expansion")
        if char == "#" and not in_word:
            refuse_syntax("#", "a comment, which hides the rest of the line")
        if ord(char) > 127:
            refuse(
                f"character {_describe_character(char)} outside quotes is not ASCII; "
                "look-alikes of shell syntax are refused (quote non-ASCII text to pass it)"
            )
        current.append(char)
        in_word, previous_unquoted = True, char
        index += 1
    if in_word:
        words.append("".join(current))
    return words


def split_command(command: str) -> list[str]:
    """Return the words of ``command`` (the program first), or refuse it.

    Refuses anything a shell would treat specially, a command longer than
    :data:`MAX_COMMAND_LENGTH`, an empty command and a first word that is a shell keyword,
    builtin or ``VAR=value`` prefix, or that is not a plain program name or path.
    """
    if not isinstance(command, str):
        raise TypeError(f"validate_command() expects the command as a str, got {type(command).__name__}")
    if len(command) > MAX_COMMAND_LENGTH:
        refuse(
            f"the command is {len(command)} characters long; the maximum is "
            f"{MAX_COMMAND_LENGTH} (MAX_COMMAND_LENGTH)"
        )
    _check_characters(command)
    words = _split_words(command)
    if not words:
        refuse("the command is empty")
    word = words[0]
    if not word:
        refuse("the program name is empty")
    if word in _SHELL_KEYWORDS:
        refuse(f"{word!r} is a shell keyword; jobs.shell runs one program without a shell")
    if word in _SHELL_BUILTINS:
        refuse(f"{word!r} is a shell builtin, not a program; jobs.shell runs no shell")
    if _ASSIGNMENT_PREFIX.match(word):
        refuse(
            f"{word!r} is a variable assignment prefix (VAR=value), which is shell syntax; "
            "pass environment variables through the task's env argument"
        )
    if not (_PROGRAM_PATH if "/" in word else _PROGRAM_NAME).match(word) or word[0] == "-":
        refuse(
            f"the program name {word!r} may contain only ASCII letters, digits, '.', '_', "
            "'+', '-' (and '/' in a path), and may not start with '-'"
        )
    return words
