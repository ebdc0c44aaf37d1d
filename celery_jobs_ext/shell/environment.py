"""The child's environment: ``PATH`` plus variables from a small allow list, nothing else.

A deny list of dangerous variables loses: programs read commands and configuration locations
from many variables (``GIT_SEQUENCE_EDITOR``, ``HOME`` and ``XDG_CONFIG_HOME`` pointing at a
chosen config, ``VIMINIT``, ``ZIPOPT`` ...), and every new program version adds some. So only
names in :data:`DEFAULT_ALLOWED_ENVIRONMENT` plus those ``jobs_shell_allowed_env`` adds pass,
checked in the producer and again in the worker. Imports nothing from Celery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.shell.syntax import refuse

ENVIRONMENT_SETTING = "jobs_shell_allowed_env"
PATH_SETTING = "jobs_shell_path"

DEFAULT_ALLOWED_ENVIRONMENT: tuple[str, ...] = (
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "NO_COLOR",
    "COLUMNS",
    "LINES",
)
"""Variables any job may set: locale, time zone, terminal type and size, colour switch.

``LC_*`` stands for every name starting with ``LC_``.
"""

# Names an administrator cannot add either: they load code into every program (the dynamic
# loader's variables, bash's exported functions) or replace the search path.
_NEVER_ALLOWED = re.compile(r"(?:PATH|LD_.*|DYLD_.*|BASH_FUNC_.*|BASH_ENV|ENV)\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?\Z")
# Locale values are names (en_US.UTF-8, C.UTF-8@euro): a '/' would make glibc load locale
# files from a chosen directory.
_LOCALE_VALUE = re.compile(r"[A-Za-z0-9_.@+:-]*\Z")
# A terminal type names a terminfo entry; a '/' would make it a path.
_TERM_VALUE = re.compile(r"[A-Za-z0-9_.+-]*\Z")


def checked_environment_names(entries: object, setting: str = ENVIRONMENT_SETTING) -> tuple[str, ...]:
    """Validate ``jobs_shell_allowed_env``: variable names, or a prefix ending in ``*``.

    Raises:
        ImproperlyConfigured: not a list of such strings, or a name no job may set.
    """
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ImproperlyConfigured(
            f"Setting {setting} = {entries!r} is invalid: expected a list of environment "
            "variable names (a trailing '*' allows every name with that prefix)."
        )
    for entry in entries:
        if not isinstance(entry, str) or not _ENTRY.match(entry):
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: {entry!r} is not a variable "
                "name such as 'APP_MODE' or a prefix such as 'APP_*'."
            )
        if _NEVER_ALLOWED.match(entry.rstrip("*")) or entry == "*":
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: {entry!r} would let a message "
                "load code into the program or change its search path; jobs.shell never passes it."
            )
    return tuple(entries)


def _is_allowed(name: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry.endswith("*"):
            if name.startswith(entry[:-1]):
                return True
        elif name == entry:
            return True
    return False


def check_environment(env: object, allowed_env: Sequence[str] = ()) -> dict[str, str]:
    """Return ``env`` as a dict if every variable is allowed, or refuse it.

    Arguments:
        env: The mapping a message asked for.
        allowed_env: Names (or ``PREFIX_*``) allowed on top of :data:`DEFAULT_ALLOWED_ENVIRONMENT`.

    Raises:
        ShellCommandNotAllowed: not a mapping of str to str, or a name is not allowed, or a
            value is malformed.
    """
    if not isinstance(env, Mapping):
        refuse(f"env must be a mapping of variable names to values, got {type(env).__name__}")
    allowed = (*DEFAULT_ALLOWED_ENVIRONMENT, *allowed_env)
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            refuse(f"env must map str to str; got {name!r}: {type(value).__name__}")
        if not _NAME.match(name):
            refuse(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if "\x00" in value:
            refuse(f"environment variable {name} contains a NUL character")
        if name == "PATH":
            refuse(f"environment variable PATH cannot be set per job; the child's PATH is {PATH_SETTING}")
        if _NEVER_ALLOWED.match(name) or not _is_allowed(name, allowed):
            refuse(
                f"environment variable {name} is not allowed: a job may set only "
                f"{', '.join(DEFAULT_ALLOWED_ENVIRONMENT)} and the names listed in {ENVIRONMENT_SETTING}"
            )
        if (name.startswith("LC_") or name in ("LANG", "LANGUAGE")) and not _LOCALE_VALUE.match(value):
            refuse(f"environment variable {name}={value!r} is not a locale name")
        if name == "TERM" and not _TERM_VALUE.match(value):
            refuse(f"environment variable TERM={value!r} is not a terminal type name")
        if name in ("COLUMNS", "LINES") and not value.isdigit():
            refuse(f"environment variable {name}={value!r} is not a number")
        if name == "TZ" and (".." in value or value.lstrip(":").startswith("/")):
            refuse(f"environment variable TZ={value!r} names a file; give a zone such as 'Europe/Paris'")
        checked[name] = value
    return checked


def child_environment(env: object, search_path: str, allowed_env: Sequence[str] = ()) -> dict[str, str]:
    """The whole environment of the child: ``PATH`` (the search path) plus the checked ``env``."""
    return {"PATH": search_path, **check_environment(env, allowed_env)}
