"""The working directory a message may choose: none, unless ``jobs_shell_allowed_cwd`` lists it.

Programs write into their working directory by default (``wget URL``, ``git clone``,
``tar x``, ``split``, ``node --prof``) and read configuration from it (a ``Makefile``, a
``.git/config``, a ``package.json``). A message that picks the directory therefore picks
where an allowed program writes, and what the next one loads. Closed by default: with the
setting empty, a message's ``cwd`` is refused and the program runs in the worker's own
working directory. An entry is an absolute directory (``"/srv/reports"``) or a directory
followed by ``/*`` for any one directory inside it (``"/srv/repos/*"``, not hidden names, not
deeper). The producer checks the text; the worker also checks the directory's real path,
so a symbolic link planted inside an allowed directory does not lead out of it. Imports
nothing from Celery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.shell.syntax import refuse

CWD_SETTING = "jobs_shell_allowed_cwd"


def checked_cwd_entries(entries: object, setting: str = CWD_SETTING) -> tuple[str, ...]:
    """Validate ``jobs_shell_allowed_cwd``: absolute, normalised directories, optionally ``/*``.

    Raises:
        ImproperlyConfigured: not a list of such strings.
    """
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ImproperlyConfigured(
            f"Setting {setting} = {entries!r} is invalid: expected a list of absolute directories "
            "(a trailing '/*' allows any one directory inside)."
        )
    for entry in entries:
        base = (entry[:-2] or "/") if isinstance(entry, str) and entry.endswith("/*") else entry
        if not is_normal_absolute_path(base) or "*" in base:
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: {entry!r} is not an absolute, "
                "normalised directory such as '/srv/reports' or '/srv/repos/*'."
            )
    return tuple(entries)


def is_normal_absolute_path(value: object) -> bool:
    """A string naming one absolute, normalised path (what a path setting must hold)."""
    return (
        isinstance(value, str)
        and "\x00" not in value
        and os.path.isabs(value)
        and os.path.normpath(value) == value
        and not value.startswith("//")
    )


def _matches(path: str, entry: str) -> bool:
    if entry.endswith("/*"):
        parent, name = os.path.split(path)
        return parent == (entry[:-2] or "/") and bool(name) and not name.startswith(".")
    return path == os.path.normpath(entry)


def check_cwd(cwd: object, allowed_cwd: Sequence[str], *, resolve: bool = False) -> str | None:
    """Return ``cwd`` if a message may run its command there, or refuse it.

    Arguments:
        cwd: The working directory the message asks for; ``None`` runs in the worker's own.
        allowed_cwd: The entries of ``jobs_shell_allowed_cwd``.
        resolve: Also require the directory to exist and its real path (symbolic links
            resolved) to match an entry's real path: the worker's check.

    Raises:
        ShellCommandNotAllowed: ``cwd`` is not a str, not absolute and normalised, not listed,
            or (with ``resolve``) not an existing directory whose real path is listed.
    """
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd or "\x00" in cwd:
        refuse(f"cwd must be an absolute directory path as a str without NUL, got {cwd!r}")
    if not allowed_cwd:
        refuse(
            f"cwd {cwd!r} is refused: {CWD_SETTING} is empty, so a message cannot choose the "
            "working directory (it picks where programs write and what they load); list the "
            "directories jobs may run in"
        )
    if not os.path.isabs(cwd) or os.path.normpath(cwd) != cwd or cwd.startswith("//"):
        refuse(f"cwd {cwd!r} must be an absolute, normalised path (no '.', '..' or '//')")
    if not any(_matches(cwd, entry) for entry in allowed_cwd):
        refuse(f"cwd {cwd!r} is not a directory listed in {CWD_SETTING} ({', '.join(allowed_cwd)})")
    if resolve:
        if not os.path.isdir(cwd):
            refuse(f"cwd {cwd!r} is not an existing directory")
        real = os.path.realpath(cwd)
        resolved_entries = [
            os.path.realpath(entry[:-2] or "/") + "/*" if entry.endswith("/*") else os.path.realpath(entry)
            for entry in allowed_cwd
        ]
        if not any(_matches(real, entry.replace("//*", "/*")) for entry in resolved_entries):
            refuse(f"cwd {cwd!r} resolves to {real!r}, which is not a directory listed in {CWD_SETTING}")
    return cwd
