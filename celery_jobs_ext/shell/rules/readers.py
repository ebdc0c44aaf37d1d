"""Programs that read what no argument names: ``ps``'s environment modifier, recursive readers of ``/``.

Red-team round 6 read the worker's environment without naming ``/proc`` in any argument:
``ps eww -p PID`` (the BSD ``e`` modifier prints each process's environment) and ``grep -r
... /``, which walks into ``/proc/<pid>/environ``. The kernel sandbox now refuses those reads
(docs/security.md, "The kernel sandbox"); these rules refuse them on kernels without Landlock:

- ``ps``: a BSD option word (no dash) holding ``e``, found with ps's value-taking options
  parsed, so the values of ``-o pid,command``, ``-p 123``, ``--sort start`` or ``p 123`` are
  not read as options;
- recursive readers given ``/`` (after normalisation: ``//``, ``/.``, ``/..``): ``grep -r``,
  ``-R``, ``--recursive``, ``-d recurse``; ``rg``, ``ag``, ``ack``, ``rgrep``; ``tar`` creating an
  archive; ``zip -r``; ``rsync -r``/``-a``; ``diff -r``. A walk from another directory that
  holds ``/proc`` (an allowed working directory of ``/`` with ``.``, ``tar -C / .``) is not
  seen here: the sandbox is the defence there.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

# procps-ng: UNIX options (-X) and BSD options (X) that take a value, glued or in the next word.
_PS_UNIX_VALUE = frozenset("CGgOopqstUuDk")
_PS_BSD_VALUE = frozenset("oOpqtUk")
_PS_LONG_VALUE = (
    "--cols", "--columns", "--width", "--rows", "--lines", "--format", "--pid", "--ppid",
    "--sid", "--tty", "--user", "--User", "--group", "--Group", "--sort", "--quick-pid", "--date-format",
)  # fmt: skip


def check_ps(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse ``ps``'s BSD ``e`` modifier (every listed process's environment)."""
    expect_value = False
    for position, word in enumerate(arguments):
        if expect_value:
            expect_value = False
            continue
        if word.startswith("--"):
            name = word.partition("=")[0]
            expect_value = "=" not in word and name in _PS_LONG_VALUE
            continue
        if word.startswith("-"):
            for index, letter in enumerate(word[1:], start=2):
                if letter in _PS_UNIX_VALUE:
                    expect_value = index == len(word)
                    break
            continue
        if not word or word.replace(",", "").isdigit():
            continue  # a pid list: ps 123,456
        for index, letter in enumerate(word, start=1):
            if letter == "e" and position not in trusted:
                refuse(
                    f"the {program} option word {word!r} is refused: 'e' prints the environment of "
                    "every process it lists, the worker's credentials with it"
                )
            if letter in _PS_BSD_VALUE:
                expect_value = index == len(word)
                break


def _is_root(word: str) -> bool:
    value = word.partition("=")[2] if word.startswith("-") else word
    return value.startswith("/") and posixpath.normpath(value) in ("/", "//")


def _short_letters(word: str, values: str) -> str:
    """The flag letters of a short option cluster, up to the first that takes a value."""
    letters = ""
    for letter in word[1:]:
        letters += letter
        if letter in values:
            break
    return letters


def _rsync_recursive(word: str) -> bool:
    return (
        word.startswith("-")
        and not word.startswith("--")
        and bool(set(_short_letters(word, "efBTM")) & set("ra"))
    )


def _recursive(family: str, arguments: Sequence[str]) -> bool:
    if family in ("rg", "ag", "ack", "rgrep"):
        return True
    for position, word in enumerate(arguments):
        if word == "--":
            break
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if family == "grep":
            if word in ("--recursive", "--dereference-recursive", "--directories=recurse"):
                return True
            if word.startswith("-") and not word.startswith("--"):
                letters = _short_letters(word, "efmABCdD")
                if "r" in letters or "R" in letters:
                    return True
                if letters.endswith("d") and (
                    word.endswith("drecurse") or (word.endswith("d") and following == "recurse")
                ):
                    return True
        elif family == "tar":
            if word in ("--create", "--append", "--update") or (
                position == 0 and not word.startswith("-") and set(word) & set("cru")
            ):
                return True
            if (
                word.startswith("-")
                and not word.startswith("--")
                and set(_short_letters(word, "fCbTXgKNLV")) & set("cru")
            ):
                return True
        elif family in ("zip", "diff"):
            if word in ("--recurse-paths", "--recursive") or (
                word.startswith("-") and not word.startswith("--") and set(word[1:]) & set("rR")
            ):
                return True
        elif family == "rsync" and (word in ("--recursive", "--archive") or _rsync_recursive(word)):
            return True
    return False


# Options whose next word is a pattern or a number, not a path (grep -e /, rg -e /).
_PATTERN_OPTIONS = frozenset({"-e", "--regexp", "-m", "-A", "-B", "-C", "--max-count", "-g", "--glob"})

_RECURSIVE_FAMILIES = {
    "grep": "grep", "egrep": "grep", "fgrep": "grep", "rgrep": "rgrep", "rg": "rg", "ag": "ag",
    "ack": "ack", "ack-grep": "ack", "tar": "tar", "zip": "zip", "rsync": "rsync", "diff": "diff",
}  # fmt: skip


def recursive_family(names: set[str]) -> str | None:
    """The recursive reader family among a program's names, if any."""
    for name in sorted(names):
        if name in _RECURSIVE_FAMILIES:
            return _RECURSIVE_FAMILIES[name]
    return None


def check_recursive_root(
    program: str, family: str, arguments: Sequence[str], trusted: frozenset[int]
) -> None:
    """Refuse a recursive read that starts at ``/`` (it walks into ``/proc``)."""
    roots = [
        word
        for position, word in enumerate(arguments)
        if position not in trusted
        and _is_root(word)
        and (position == 0 or arguments[position - 1] not in _PATTERN_OPTIONS)
    ]
    if roots and _recursive(family, arguments):
        refuse(
            f"{program} would read recursively from {roots[0]!r}, which walks into /proc and other "
            "processes' environments; name the directory to read"
        )
