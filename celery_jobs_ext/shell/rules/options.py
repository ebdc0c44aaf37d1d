"""Matching arguments against refused options, the way each program's option parser reads them.

Entry syntax (built-in table and ``jobs_shell_denied_arguments``):

- ``--name`` matches ``--name``, ``--name=...`` and every abbreviation ``--na``/``--na=...``
  (``getopt_long`` and git accept unambiguous prefixes), except a real option that is itself a
  prefix of a refused one (tar's ``--checkpoint``, curl's ``--cookie``); for nmap, which reads
  long options with one dash too, also ``-name`` and its prefixes;
- ``-x`` matches the letter in any cluster of short options (``-xvI``, ``-Igzip``) up to the
  first letter known to take a value; for programs whose options are single-dash words
  (``find``, ``openssl``, ``ip``) it is the whole word;
- ``-word`` matches ``-word`` and ``-word=...`` exactly (``ip`` also takes its prefixes);
- ``+`` matches any argument starting with ``+``; ``word=`` any argument starting with it;
  any other entry matches that exact word.

MySQL and MariaDB read ``--init_command`` as ``--init-command`` and ignore a ``--loose-`` or
``--maximum-`` prefix, so their arguments are normalised first. An option that writes a file
is allowed when its value is ``-`` (standard output), ``/dev/stdout`` or ``/dev/null`` for the
programs that read it so (``curl -o -``, ``curl -o /dev/null``, ``wget -qO-``). OpenSSL,
sqlite3 and TeX read their one-dash options with two dashes too, so ``--out`` is ``-out``.
Every argument is examined, also after ``--`` and after what looks like an option's value:
safer than guessing where a program stops reading options. The exception is python, whose
grammar is simple and whose script's own options are common (``python3 app.py -c conf.yml``):
after the script operand nothing is python's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.interpreters import python_script_position
from celery_jobs_ext.shell.rules.table import (
    DEFAULT_REFUSAL_REASON,
    DENIED_ARGUMENTS,
    DENIED_SETTING,
    LONG_OPTION_EXCEPTIONS,
    REFUSAL_REASONS,
    SHORT_OPTIONS_WITH_VALUES,
)
from celery_jobs_ext.shell.syntax import refuse

# Programs whose options are single-dash words: "-b" is an option named b, not a cluster.
_SINGLE_DASH_WORDS = frozenset(
    {"find", "openssl", "ip", "sqlite3", "emacs", "pwsh", "erl", "tex", "magick", "go"}
)
# Of those, the ones whose parser also accepts the same word with two dashes
# (OpenSSL 3 reads "--out" as "-out"): normalised to one dash before matching.
_DOUBLE_DASH_TOO = frozenset({"openssl", "sqlite3", "tex", "go"})
# getopt_long_only: "-scrip=x" is "--script=x" (long options, and their prefixes, with one dash).
_LONG_ONLY = frozenset({"nmap", "emacs"})
# Of those, the ones that accept any prefix of an option's name (iproute2's matches()).
_SINGLE_DASH_PREFIXES = frozenset({"ip", "pwsh"})
_MYSQL_FAMILY = frozenset({"mysql", "mysqldump"})
_MYSQL_PREFIXES = ("loose-", "maximum-", "enable-")

# Values of a file-writing option that write nowhere a message could use: standard output
# ("-" for the programs that read it so), /dev/stdout and /dev/null.
HARMLESS_OUTPUTS = frozenset({"-", "/dev/stdout", "/dev/null"})

# Options that write to standard output when their value is "-".
_STDOUT_WHEN_DASH: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "curl": frozenset(
            {
                "-o",
                "--output",
                "-D",
                "--dump-header",
                "-c",
                "--cookie-jar",
                "--trace",
                "--trace-ascii",
                "--stderr",
                "--libcurl",
            }
        ),
        "wget": frozenset({"-O", "--output-document"}),
    }
)


def normalised(argument: str, names: set[str]) -> str:
    """The argument as the program's option parser sees it (MySQL's ``_`` and ``--loose-``)."""
    if "pwsh" in names:
        return argument.lower()  # PowerShell parameters are case-insensitive
    if names & _DOUBLE_DASH_TOO and argument.startswith("--") and len(argument) > 2:
        return argument[1:]
    if names & _MYSQL_FAMILY and argument.startswith("--") and len(argument) > 2:
        name, equals, value = argument.partition("=")
        body = name[2:].replace("_", "-").lower()
        while True:
            prefix = next((p for p in _MYSQL_PREFIXES if body.startswith(p)), None)
            if prefix is None:
                return "--" + body + equals + value
            body = body[len(prefix) :]
    return argument


def argument_matches(
    entry: str,
    argument: str,
    value_letters: str,
    exceptions: frozenset[str],
    *,
    single_dash: bool = False,
    single_dash_prefixes: bool = False,
    long_only: bool = False,
) -> bool:
    """Whether ``argument`` uses the refused option ``entry`` (see the module docstring)."""
    if entry.startswith("--"):
        if long_only and argument.startswith("-") and not argument.startswith("--"):
            argument = "-" + argument
        if not argument.startswith("--") or argument == "--":
            return False
        name = argument.split("=", 1)[0]
        if name == entry:
            return True
        return len(name) > 2 and entry.startswith(name) and name not in exceptions
    if entry.startswith("-") and len(entry) == 2 and not single_dash:
        if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
            return False
        for letter in argument[1:]:
            if letter == entry[1]:
                return True
            if letter in value_letters:
                return False
        return False
    if entry.startswith("-"):
        name = argument.split("=", 1)[0]
        if single_dash_prefixes and name.startswith("--"):
            name = name[1:]
        if name == entry:
            return True
        return single_dash_prefixes and len(name) > 1 and name.startswith("-") and entry.startswith(name)
    if entry.startswith("+") or entry.endswith("="):
        return argument.startswith(entry)
    return argument == entry


def _value_of(entry: str, arguments: Sequence[str], position: int) -> str | None:
    """The value the option ``entry`` gets at ``arguments[position]`` (glued or the next word)."""
    argument = arguments[position]
    if entry.startswith("--"):
        _, equals, value = argument.partition("=")
        if equals:
            return value
    else:
        glued = argument[argument.index(entry[1]) + 1 :] if entry[1] in argument[1:] else ""
        if glued:
            return glued
    return arguments[position + 1] if position + 1 < len(arguments) else None


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
    single_dash = bool(names & _SINGLE_DASH_WORDS)
    prefixes = bool(names & _SINGLE_DASH_PREFIXES)
    long_only = bool(names & _LONG_ONLY)
    stdout_options = frozenset().union(*(_STDOUT_WHEN_DASH.get(name, ()) for name in names))
    candidates: list[tuple[str, str, str | None]] = []  # (name, entry, configured name)
    for name in sorted(names):
        candidates += [(name, entry, None) for entry in DENIED_ARGUMENTS.get(name, ())]
        candidates += [(name, entry, name) for entry in configured.get(name, ())]
    # A real option spelled out in full is that option, not an abbreviation of a longer one.
    exceptions |= {entry for _, entry, _ in candidates if entry.startswith("--")}
    # python stops reading options at its script: what follows is the script's (app.py -c x)
    script = python_script_position(arguments) if "python" in names else None
    for position, raw in enumerate(arguments):
        if script is not None and position > script:
            break
        if position in trusted:
            continue
        argument = normalised(raw, names)
        matches = [
            candidate
            for candidate in candidates
            if argument_matches(
                candidate[1], argument, value_letters, exceptions,
                single_dash=single_dash and candidate[2] is None, single_dash_prefixes=prefixes,
                long_only=long_only,
            )
        ]  # fmt: skip
        matches = [
            match
            for match in matches
            if not (
                match[1] in stdout_options and _value_of(match[1], arguments, position) in HARMLESS_OUTPUTS
            )
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
        refuse(f"argument {raw!r} of {program!r} matches {entry!r}, {why}")
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
