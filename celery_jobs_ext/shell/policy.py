"""Policy: which program may run with which arguments; :func:`validate_command`.

Closed by default: an empty ``jobs_allowed_shell_commands`` refuses every command. ``["*"]``
allows any program found on the search path (the worker warns at start-up). An entry is a
program name (any arguments, under the per-program rules of :mod:`.rules`), an exact path, or
a sudoers-style pattern (:mod:`.patterns`). Programs whose job is to run another program
(:data:`REFUSED_PROGRAMS`: ``env``, ``nice``, ``timeout``, ``setarch`` and its ``linux64``
links ...) are refused in every mode, also under another name that resolves to one of them.
Imports nothing from Celery: :func:`validate_command` works without a configured app when its
arguments are given.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell.patterns import ALLOWED_SETTING, ANY_PROGRAM, REST, AllowedEntry, parse_entries
from celery_jobs_ext.shell.rules import check_arguments
from celery_jobs_ext.shell.rules.table import DENIED_SETTING, names_of
from celery_jobs_ext.shell.syntax import refuse, split_command

DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
"""The default of ``jobs_shell_path``: where bare program names are looked up."""

PATH_SETTING = "jobs_shell_path"

REFUSED_PROGRAMS: frozenset[str] = frozenset(
    {
        # run the program named in their arguments
        "at", "batch", "bwrap", "busybox", "capsh", "catchsegv", "cgexec", "chpst", "chroot",
        "chronic", "chrt", "command", "cpulimit", "crontab", "daemonize", "dbus-launch",
        "dbus-run-session", "doas", "dtach", "eatmydata", "entr", "env", "envdir", "expect",
        "fakechroot", "fakeroot", "faketime", "firejail", "flatpak-spawn", "flock", "gdb", "ifne",
        "ionice", "lckdo", "logsave", "ltrace", "machinectl", "mispipe", "newgrp", "nice",
        "nocache", "nohup", "nsenter", "numactl", "parallel", "perf", "pkexec", "prlimit", "proot",
        "proxychains", "proxychains4", "rlwrap", "run-parts", "runcon", "runuser",
        "schroot", "screen", "script", "sem", "setlock", "setpriv", "setsid", "sg", "socat",
        "softlimit", "ssh-agent", "sshpass", "start-stop-daemon", "stdbuf", "strace", "su",
        "sudo", "sudoedit", "systemd-nspawn", "systemd-run", "taskset", "time", "timeout",
        "tmux", "torify", "torsocks", "toybox", "trickle", "tsp", "unbuffer", "unshare",
        "valgrind", "watch", "xargs", "xvfb-run", "nq", "pee", "zrun", "run-one", "run-this-one",
        "keep-one-running", "abduco", "setuidgid", "envuidgid", "fghack", "pgrphack", "sandbox",
        "tsocks", "caffeinate", "gksu", "gksudo", "kdesu", "kdesudo", "gpg-agent", "mpirun",
        "mpiexec", "srun", "xterm", "uxterm", "x-terminal-emulator", "gnome-terminal", "konsole",
        "urxvt", "rxvt", "alacritty", "kitty", "st", "terminator", "tilix", "xfce4-terminal",
        "xdg-open", "sensible-browser", "sensible-editor", "sensible-pager", "x-www-browser",
        "www-browser", "run-mailcap", "see", "edit", "gio", "gtk-launch", "dex", "lldb", "wine",
        "wine64", "box64", "box86", "exo-open", "kde-open", "kde-open5", "gnome-open",
        "choom", "uclampset", "systemd-cat", "systemd-inhibit", "systemd-socket-activate",
        "run_erl", "scriptlive", "npx", "pnpx", "bunx", "uvx", "pipx", "direnv", "dotenv",
        "with-contenv", "s6-setuidgid", "s6-envdir", "s6-softlimit", "tini", "dumb-init",
        "catatonit", "gosu", "su-exec", "sudo-rs", "run0",
        "byobu", "zellij", "vipe", "watchexec", "nodemon", "reflex", "hyperfine", "timelimit",
        "pexec", "rush", "xe", "daemon", "execlineb", "tcpserver", "tcpsvd", "udpsvd", "nsjail",
        "minijail0", "apptainer", "singularity", "bpftrace", "rr", "uftrace", "heaptrack",
        "pipexec", "xinit", "startx", "when-changed", "retry",
        # found by scanning /usr/bin man-page synopses for a COMMAND or PROGRAM operand (round 2)
        "sotruss", "memusage", "dpkg-architecture", "debconf", "debconf-apt-progress",
        "gpg-connect-agent", "dirmngr", "git-shell", "luit", "amqp-consume", "msgexec",
        "pg_virtualenv", "make-first-existing-target", "gprofng", "fakeroot-sysv", "fakeroot-tcp",
        "valgrind.bin", "openvt", "jrunscript", "jshell", "jdb",
        # setarch and the personality links to it
        "setarch", "linux32", "linux64", "uname26", "i386", "i486", "i586", "i686", "x86_64",
        "arm", "armv7l", "armv8l", "aarch64", "arm64", "ppc", "ppc32", "ppc64", "ppc64le",
        "s390", "s390x", "sparc", "sparc32", "sparc64", "sparc32bash", "mips", "mips32",
        "mips64", "parisc", "parisc32", "parisc64", "ia64", "alpha", "sh4", "m68k",
        "loongarch", "loongarch64", "riscv64",
    }
)  # fmt: skip
"""Programs that exist to run the program named in their arguments; refused even when listed."""

# Multi-call binaries run the applet named by argv[0]: a link named "ls" to busybox is ls.
# Refused under their own name, judged by the link's name otherwise.
_MULTI_CALL = frozenset({"busybox", "toybox", "coreutils"})
# The dynamic loader and user-mode emulators run the program named in their arguments.
_DYNAMIC_LOADER = re.compile(r"ld(?:-linux|-musl|\.so)|qemu-")


class ShellSettings(Protocol):
    """The part of the extension's configuration validation reads."""

    @property
    def allowed_shell_commands(self) -> Sequence[str]: ...

    @property
    def shell_path(self) -> str: ...

    @property
    def shell_denied_arguments(self) -> Mapping[str, Sequence[str]]: ...


def current_settings() -> ShellSettings:
    """The configured settings of the current app (imports Celery only when called)."""
    from celery_jobs_ext.config import ConfigCache

    settings: ShellSettings = ConfigCache.get()
    return settings


def checked_search_path(search_path: object) -> str:
    """Return ``search_path`` if every entry is an absolute directory, else raise."""
    if not isinstance(search_path, str):
        raise ImproperlyConfigured(
            f"Setting {PATH_SETTING} = {search_path!r} is invalid: expected a str, "
            f"got {type(search_path).__name__}."
        )
    for entry in search_path.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            raise ImproperlyConfigured(
                f"Setting {PATH_SETTING} = {search_path!r} is invalid: expected a "
                f"{os.pathsep!r}-separated list of absolute directories, and {entry!r} is not "
                "one (an empty or relative entry would search the working directory)."
            )
    return search_path


def checked_denied_arguments(value: object) -> Mapping[str, Sequence[str]]:
    """Return ``jobs_shell_denied_arguments`` if well formed, else raise naming the setting."""
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"Setting {DENIED_SETTING} = {value!r} is invalid: expected a dict of program name "
            "to a list of options."
        )
    for program, options in value.items():
        if not isinstance(program, str) or not program:
            raise ImproperlyConfigured(
                f"Setting {DENIED_SETTING} is invalid: program names must be non-empty strings "
                f"(bad key {program!r})."
            )
        if isinstance(options, str) or not isinstance(options, (list, tuple)):
            raise ImproperlyConfigured(
                f"Setting {DENIED_SETTING} is invalid: expected a list of options for {program!r}, "
                f"got {options!r}."
            )
        for option in options:
            if not isinstance(option, str) or not option:
                raise ImproperlyConfigured(
                    f"Setting {DENIED_SETTING} is invalid: options must be non-empty strings "
                    f"(bad option {option!r} for {program!r})."
                )
    return value


def _describe_allowed(entries: Iterable[AllowedEntry]) -> str:
    texts = sorted(entry.text for entry in entries)
    shown = ", ".join(texts[:20]) + (", ..." if len(texts) > 20 else "")
    return f"{ALLOWED_SETTING}: {shown}"


def _resolve(word: str, any_program: bool, listed: bool, search_path: str) -> str:
    """Return the path to execute for the first word, or refuse it."""
    if "/" in word:
        if not os.path.isabs(word):
            refuse(
                f"{word!r} is a relative path, which resolves against the working directory a "
                "message chooses; list and call the program by its absolute path"
            )
        if not (listed or any_program):
            refuse(f"{word!r} is a path; a path-qualified program runs only when that exact path is listed")
        if not (os.path.isfile(word) and os.access(word, os.X_OK)):
            refuse(f"{word!r} is not an executable file")
        return word
    found = shutil.which(word, path=search_path)
    if found is None:
        refuse(
            f"{word!r} was not found on the command search path {search_path!r} "
            f"({PATH_SETTING}); jobs.shell never searches the worker's own PATH"
        )
    return found


def refuse_wrappers(word: str, resolved: str) -> None:
    """Refuse a program that runs another one, by its name, its path or its real path."""
    named = {os.path.basename(word), os.path.basename(resolved)}
    real = os.path.realpath(resolved) if os.path.isabs(resolved) else resolved
    real_names = names_of([real]) - _MULTI_CALL
    for name in names_of(named) | real_names:
        if name in REFUSED_PROGRAMS or _DYNAMIC_LOADER.match(name):
            refuse(
                f"{os.path.basename(word)!r} runs the program named in its arguments "
                + (f"(it is {real!r}) " if name in real_names and name not in names_of(named) else "")
                + "which would bypass the allowed commands; jobs.shell refuses it in every mode"
            )


def validate_command(
    command: str,
    allowed: Sequence[str] | None = None,
    *,
    denied_arguments: Mapping[str, Sequence[str]] | None = None,
    search_path: str | None = None,
) -> list[str]:
    """Parse a command string like a POSIX shell and return the argv to run, or refuse it.

    Nothing is executed. Shell syntax is refused rather than passed on as text, because the
    caller asked for a shell command and would otherwise get a different one.

    Arguments:
        command: The command line, e.g. ``"grep -E 'ERROR|WARN' app.log"``.
        allowed: Entries that may run: program names, exact paths, argument patterns
            (``"du -sh /srv/*"``) or ``"*"`` for any program. Empty refuses everything.
            ``None`` reads ``jobs_allowed_shell_commands``.
        denied_arguments: Extra refused options per program name.
            ``None`` reads ``jobs_shell_denied_arguments``.
        search_path: The ``PATH`` bare names are resolved through. ``None`` reads
            ``jobs_shell_path``.

    Returns:
        The argv: ``argv[0]`` is the absolute path the program was found at (or the listed
        path as written), the rest are the arguments with quotes and escapes removed.

    Raises:
        ShellCommandNotAllowed: The command is refused; the message says which part and why.
        TypeError: ``command`` is not a str.
        ImproperlyConfigured: ``allowed``, ``denied_arguments`` or ``search_path`` is malformed.
    """
    if allowed is None or denied_arguments is None or search_path is None:
        settings = current_settings()
        allowed = settings.allowed_shell_commands if allowed is None else allowed
        if denied_arguments is None:
            denied_arguments = settings.shell_denied_arguments
        search_path = settings.shell_path if search_path is None else search_path
    entries = parse_entries(allowed)
    denied_arguments = checked_denied_arguments(denied_arguments)
    search_path = checked_search_path(search_path)

    if not entries:
        if not isinstance(command, str):
            raise TypeError(f"validate_command() expects the command as a str, got {type(command).__name__}")
        refuse(
            f"{ALLOWED_SETTING} is empty, so jobs.shell runs no command; list the programs or "
            "argument patterns it may run (or '*' for any program)"
        )
    words = split_command(command)
    word, arguments = words[0], words[1:]
    any_program = any(entry.program == ANY_PROGRAM for entry in entries)
    candidates = [entry for entry in entries if entry.program == word]
    if not candidates and not any_program:
        if "/" in word:
            refuse(
                f"{word!r} is a path; a path-qualified program runs only when that exact path "
                f"is listed ({_describe_allowed(entries)})"
            )
        refuse(f"{word!r} is not an allowed command ({_describe_allowed(entries)})")
    resolved = _resolve(word, any_program, bool(candidates), search_path)
    refuse_wrappers(word, resolved)

    # Each matching entry is a way the command may be allowed: a bare name trusts no argument,
    # a pattern trusts the words it spells out. One that passes the program rules suffices.
    # A pattern without "..." also pins what the program writes by default (wget's download,
    # tee's operand); one ending in "..." pins nothing after its fixed words.
    ways: list[tuple[tuple[int, ...], bool]] = [((), False)]
    if candidates and not any_program:
        ways = [
            (found, entry.words is not None and entry.words[-1:] != (REST,))
            for entry in candidates
            for found in [entry.matches(arguments)]
            if found is not None
        ]
        if not ways:
            refuse(
                f"the arguments of {word!r} match none of its entries in {ALLOWED_SETTING} "
                f"({', '.join(entry.text for entry in candidates)})"
            )
    paths = [word, resolved]
    if os.path.isabs(resolved):
        paths.append(os.path.realpath(resolved))
    *others, loosest = sorted(set(ways), key=lambda way: (len(way[0]), way[1]), reverse=True)
    for trusted, pinned in others:
        with contextlib.suppress(ShellCommandNotAllowed):
            check_arguments(
                os.path.basename(word), paths, arguments, denied_arguments, trusted=trusted, pinned=pinned
            )
            return [resolved, *arguments]
    # The loosest way decides, and its refusal is the one reported.
    check_arguments(
        os.path.basename(word), paths, arguments, denied_arguments, trusted=loosest[0], pinned=loosest[1]
    )
    return [resolved, *arguments]
