"""Programs that change the machine's state listed by bare name: only their read-only forms.

``kill``/``pkill``/``killall`` signal any process of the worker's user (the worker itself
included), ``renice`` changes priorities, ``sysctl -w``/``key=value`` changes kernel
settings, ``hostname NAME`` renames the machine, ``date -s``/``date MMDDhhmm`` sets the
clock. A bare-listed one may only list or check (``kill -l``, ``kill -0 PID``, ``sysctl
net.ipv4.ip_forward``, ``hostname -f``, ``date +%s``); anything else needs an argument
pattern that spells it out (``"systemctl reload nginx"`` rather than ``kill -HUP``).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

_SIGNAL_ZERO = frozenset({"-0", "-s0", "--signal=0", "-SIG0", "-n0"})
_LISTING = frozenset({"-l", "-L", "--list", "--table", "--help", "--version", "-V"})
_SIGNAL_OPTIONS = frozenset({"-s", "--signal", "-n"})


def check_kill(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Allow listing signals and checking processes (signal 0) only."""
    if all(position in trusted for position in range(len(arguments))):
        return  # no argument, or the pattern spells every word out
    if pinned and all(position in trusted for position, word in enumerate(arguments) if word.startswith("-")):
        return  # the pattern spells out the signal ("kill -HUP *"): the targets are its wildcards
    words = list(arguments)
    if words[0] in _LISTING and not any(word.startswith("-") for word in words[1:]):
        return  # kill -l, kill -l 9: list signals
    if words[0] in _SIGNAL_OPTIONS and len(words) > 1 and words[1] == "0":
        words = ["-0", *words[2:]]
    if words[0] in _SIGNAL_ZERO and not any(word.startswith("-") for word in words[1:]):
        return  # kill -0 PID: does the process exist?
    refuse(
        f"{program!r} sends a signal to processes the message chooses (the worker's own included); "
        "a bare-listed one may only list signals (-l) or check a process (-0), so pin the signal "
        "and the target with a pattern"
    )


def check_renice(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """A bare-listed renice only prints its help or version."""
    for position, word in enumerate(arguments):
        if position not in trusted and word not in ("--help", "--version", "-h", "-V"):
            refuse(f"{program!r} changes the priority of processes; pin it with a pattern")


_SYSCTL_WRITING = ("-w", "--write", "-p", "--load", "-f", "--system")


def check_sysctl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse writing a kernel setting: ``-w``, ``-p``/``--load``/``--system`` and ``key=value``."""
    for position, word in enumerate(arguments):
        if position in trusted:
            continue
        name = word.split("=", 1)[0]
        short = word.startswith("-") and not word.startswith("--")
        if (
            (short and any(letter in word[1:] for letter in "wpf"))
            or (name.startswith("--") and len(name) > 2 and any(o.startswith(name) for o in _SYSCTL_WRITING))
            or (not word.startswith("-") and "=" in word)
        ):
            refuse(
                f"argument {word!r} of {program!r} writes kernel settings; a bare-listed sysctl may "
                "only read them, so pin the setting with a pattern"
            )


def check_hostname(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse setting the host name: an operand, ``-F``/``--file``, ``-b``/``--boot``."""
    for position, word in enumerate(arguments):
        if position in trusted:
            continue
        name = word.split("=", 1)[0]
        if (
            not word.startswith("-")
            or (word.startswith("-") and not word.startswith("--") and any(c in word for c in "Fb"))
            or (len(name) > 2 and ("--file".startswith(name) or "--boot".startswith(name)))
        ):
            refuse(f"argument {word!r} of {program!r} sets the host name; pin it with a pattern")


_DATE_VALUE_OPTIONS = ("-d", "-f", "-r", "--date", "--file", "--reference")


def check_date(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse setting the clock: ``-s``/``--set`` and an operand that is not a ``+FORMAT``."""
    skip = False
    for position, word in enumerate(arguments):
        if skip:
            skip = False
            continue
        if position in trusted:
            continue
        name = word.split("=", 1)[0]
        if word.startswith("--"):
            if len(name) > 2 and "--set".startswith(name):
                refuse(f"argument {word!r} of {program!r} sets the system clock")
            skip = "=" not in word and any(
                o.startswith(name) and o.startswith("--") for o in _DATE_VALUE_OPTIONS
            )
        elif word.startswith("-") and word != "-":
            for index, letter in enumerate(word[1:], start=1):
                if letter == "s":
                    refuse(f"argument {word!r} of {program!r} sets the system clock")
                if letter in "dfr":
                    skip = not word[index + 1 :]
                    break
        elif not word.startswith("+"):
            refuse(f"argument {word!r} of {program!r} sets the system clock (date MMDDhhmm...)")
