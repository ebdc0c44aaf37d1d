"""sqlite3 and zip: dot-commands and SQL functions that run programs or write files; zip -TT."""

from __future__ import annotations

import re
from collections.abc import Sequence

from celery_jobs_ext.shell.rules.table import REFUSAL_REASONS
from celery_jobs_ext.shell.syntax import refuse

_SQLITE_DANGEROUS = re.compile(
    r"(?:^|;)\s*\.(?:shell|system|output|once|excel|load|log|save|backup|clone|import|read"
    r"|cd|open|archive|ar|trace|iotrace)\b"
    r"|\b(?:writefile|edit|load_extension)\s*\("
    r"|\battach\b|\bvacuum\s+into\b",
    re.IGNORECASE,
)


def check_sqlite(program: str, arguments: Sequence[str], pinned: bool = False) -> None:
    for argument in arguments:
        found = _SQLITE_DANGEROUS.search(argument)
        if found:
            refuse(
                f"argument {argument!r} of {program!r} uses {found.group().strip(' ;')!r}, "
                "which runs a program, loads an extension, or reads or writes other files"
            )


def check_zip(program: str, arguments: Sequence[str], pinned: bool = False) -> None:
    # zip's own option parser also takes -TT's value glued (-TTcmd) or inside a cluster.
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("--") and "TT" in argument:
            refuse(f"argument {argument!r} of {program!r} uses -TT, which {REFUSAL_REASONS['zip']}")
