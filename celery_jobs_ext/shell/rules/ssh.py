"""ssh, scp, sftp: ``-o`` settings that run a local program, load a library or read other files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from celery_jobs_ext.shell.rules.table import SHORT_OPTIONS_WITH_VALUES, names_of
from celery_jobs_ext.shell.syntax import refuse

_SSH_REFUSED_SETTINGS = frozenset(
    {
        "proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand",
        "pkcs11provider", "securitykeyprovider", "xauthlocation", "userknownhostsfile",
        "include", "match",
    }
)  # fmt: skip
_SSH_KEYWORD = re.compile(r"\s*([A-Za-z0-9]*)")


def _ssh_option_values(arguments: Sequence[str], value_letters: str) -> Iterable[str]:
    """Yield the values given to ``-o``, glued (``-oX=y``, ``-vo X=y``) or separate."""
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
            continue
        for position, letter in enumerate(argument[1:], start=2):
            if letter == "o":
                value = argument[position:]
                if not value and index < len(arguments):
                    value = arguments[index]
                    index += 1
                yield value
                break
            if letter in value_letters:
                break


def check_ssh(program: str, arguments: Sequence[str], pinned: bool = False) -> None:
    family = next((name for name in ("sftp", "scp", "ssh") if name in names_of((program,))), "ssh")
    for value in _ssh_option_values(arguments, SHORT_OPTIONS_WITH_VALUES[family]):
        keyword = _SSH_KEYWORD.match(value)
        if keyword and keyword.group(1).lower() in _SSH_REFUSED_SETTINGS:
            refuse(
                f"option -o {value!r} of {program!r} sets {keyword.group(1)}, which runs a "
                "local program, loads a library, reads other configuration or writes a file"
            )
