"""Arguments that name a process's own memory, environment or open files.

``/proc/self/environ`` holds the ``env`` a message chose, and ``/proc/<pid>/mem``, ``fd/``,
``cmdline`` ... what a process holds; a program that reads a file as a script or copies it
(``perl -x``, ``python3 -x``, ``curl -T``, ``xxd -r``) turns them into code or file contents.
So under ``/proc`` only the system-wide read-only files of :data:`ALLOWED_PROC_FILES` may be
named, and ``/dev/fd``, ``/dev/stdin`` not at all; every path inside an argument counts
(``--config=/proc/...``, ``-d @/proc/...``, ``file:///proc/...``). Applies to every program.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

ALLOWED_PROC_FILES = frozenset(
    {
        "cpuinfo", "meminfo", "loadavg", "uptime", "version", "stat", "vmstat", "diskstats",
        "partitions", "filesystems", "swaps", "interrupts", "softirqs", "zoneinfo", "buddyinfo",
        "pressure/cpu", "pressure/io", "pressure/memory",
    }
)  # fmt: skip
"""Files under ``/proc`` that describe the whole system and hold nothing a message wrote."""

_SEPARATORS = re.compile(r"[=@,;]|:(?!//)|file:/*(?=/)")
_REFUSED_DEVICES = ("dev/fd", "dev/stdin")


def _paths_in(argument: str) -> list[str]:
    """The path-like pieces of an argument: the whole word and what follows ``=``, ``@``, ..."""
    pieces = [argument, *_SEPARATORS.split(argument)]
    if argument.lower().startswith("file:"):
        pieces.append(argument[5:])
    return [piece for piece in pieces if "proc" in piece or "dev" in piece]


def _refused(path: str) -> bool:
    normal = posixpath.normpath(path).lstrip("/")
    while normal.startswith("../"):
        normal = normal[3:]
    if normal == "proc" or normal.startswith("proc/"):
        return normal[len("proc/") :] not in ALLOWED_PROC_FILES
    return any(normal == device or normal.startswith(device + "/") for device in _REFUSED_DEVICES)


def check_process_files(program: str, arguments: Sequence[str], trusted: frozenset[int]) -> None:
    """Refuse an argument naming a process's own files (``/proc/self/environ``, ``/dev/fd/0``)."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        for path in _paths_in(argument):
            if ("/" in path or path.startswith("proc")) and _refused(path):
                refuse(
                    f"argument {argument!r} of {program!r} names a process's own memory, "
                    "environment or open files (/proc/<pid>/..., /dev/fd), which a program can "
                    "read back as a script or copy into a file; only system-wide /proc files "
                    f"({', '.join(sorted(ALLOWED_PROC_FILES))}) may be named"
                )
