"""curl and wget: where the download goes, and curl's ``%output{}`` write-out variable.

wget saves what it downloads as files in the working directory (which a message chooses), so
a bare-listed wget must send it to standard output (``-O -``) or only check (``--spider``);
an argument pattern that pins the command allows what it spells out. curl's ``-w`` can write
a file itself (``%output{file}``, curl 8.3+), or read its format from one (``-w @file``).
"""

from __future__ import annotations

import re
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
    """Refuse a wget that would save files, unless an argument pattern pinned the command.

    A pinned command may save its download, but not recurse through a word a wildcard
    matched (``"wget -* https://example.com/x"`` given ``-r``).
    """
    letters = SHORT_OPTIONS_WITH_VALUES["wget"]
    if pinned:
        arguments = [argument for position, argument in enumerate(arguments) if position not in trusted]
    to_stdout = bool(
        set(_option_values(arguments, "-O", "--output-document", letters)) & {"-", "/dev/stdout", "/dev/null"}
    )
    spider = any(argument_matches("--spider", argument, letters, frozenset()) for argument in arguments)
    recursive = [
        argument
        for argument in arguments
        if any(
            argument_matches(option, argument, letters, frozenset())
            for option in ("-r", "--recursive", "-m", "--mirror", "-p", "--page-requisites")
        )
    ]
    if recursive:
        refuse(
            f"argument {recursive[0]!r} of {program!r} makes wget save a directory tree in the "
            "working directory (also with --spider); pin the command with a pattern"
        )
    if not (to_stdout or spider or pinned):
        refuse(
            f"{program!r} saves downloads as files in the working directory; add -O - to get the "
            "download as output (or --spider to only check), or pin the command with a pattern"
        )


# Schemes through which curl sends chosen bytes to a local service (gopher://127.0.0.1:6379/_...
# speaks Redis), or reads and writes local files (file://, with -T an upload writes any path),
# rather than downloading something. Matched in any argument (also --url=...),
# and a scheme written with curl's URL globbing ({gopher,http}://) is refused outright.
_REFUSED_SCHEMES = frozenset(
    {"gopher", "gophers", "dict", "telnet", "mqtt", "mqtts", "smtp", "smtps", "rtsp", "tftp", "ldap",
     "ldaps", "smb", "smbs", "ws", "wss", "file"}
)  # fmt: skip
_SCHEME = re.compile(r"([a-z0-9+.{},\[\]-]+)://")
# curl parses "scheme:" with any number of slashes or backslashes after it (file:/etc/x,
# FILE:\\x, gopher:host): a URL at the start of an argument, or after '=' (--url=...).
_LEADING_SCHEME = re.compile(r"(?:[^=]*=)?\s*([a-z][a-z0-9+.-]*|[{\[][a-z0-9+.,-]*[}\]]):")


def _refused_scheme(argument: str) -> str | None:
    leading = _LEADING_SCHEME.match(argument.lower())
    if leading and (leading.group(1) in _REFUSED_SCHEMES or leading.group(1)[0] in "{["):
        return leading.group(1)
    for match in _SCHEME.finditer(argument.lower()):
        scheme = match.group(1)
        if any(char in scheme for char in "{}[],") or scheme.rsplit("=", 1)[-1] in _REFUSED_SCHEMES:
            return scheme
        if re.split(r"[^a-z0-9]+", scheme)[-1] in _REFUSED_SCHEMES:
            return scheme
    return None


def check_curl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse raw-socket schemes, and a ``--write-out`` that writes a file or reads its format from one."""
    for position, argument in enumerate(arguments):
        if position not in trusted and _refused_scheme(argument):
            refuse(
                f"argument {argument!r} of {program!r} uses a scheme that sends chosen bytes to a "
                "service (gopher, dict, telnet ...); only downloads are allowed"
            )
    literal = {arguments[position] for position in trusted}
    for value in _option_values(arguments, "-w", "--write-out", SHORT_OPTIONS_WITH_VALUES["curl"]):
        if value in literal:
            continue
        if "%output{" in value.lower() or value.startswith("@"):
            refuse(
                f"the --write-out format {value!r} of {program!r} writes a file (%output{{...}}) or "
                "reads its format from one (@file)"
            )
