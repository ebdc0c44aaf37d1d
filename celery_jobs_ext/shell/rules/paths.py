"""Arguments that name a process's own memory, environment or open files.

``/proc/self/environ`` holds the ``env`` a message chose, and ``/proc/<pid>/mem``, ``fd/``,
``cmdline`` ... what a process holds; a program that reads a file as a script or copies it
(``perl -x``, ``python3 -x``, ``curl -T``, ``xxd -r``) turns them into code or file contents.
So under ``/proc`` only the system-wide read-only files of :data:`ALLOWED_PROC_FILES` may be
named, and ``/dev/fd``, ``/dev/stdin`` not at all; every path inside an argument counts
(``--config=/proc/...``, ``-d @/proc/...``, ``file:///proc/...``, ``-x/proc/...``). The
kernel follows ``/proc/thread-self``, ``/proc/self`` and ``/dev/fd`` before the ``..`` after
them, so a path with both a ``..`` and a ``proc`` or ``dev`` component is refused whatever it
normalises to, and an absolute path is also judged where the links on disk lead, followed
until they reach ``/proc`` (whose own links depend on the process that reads them). Applies
to every program.

Also here, for interpreters only: a script among the installed programs
(:data:`PROGRAM_DIRECTORIES`, any ``bin/``, ``sbin/`` or ``Scripts/`` directory, a package
tree, a virtualenv: a directory above holds ``pyvenv.cfg``) runs that program, listed or not,
wrapper or not.
"""

from __future__ import annotations

import os
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
    # a path glued to an option (-x/proc/self/environ) starts at its first '/proc' or '/dev'
    for marker in ("/proc", "/dev/"):
        start = argument.find(marker)
        while start >= 0:
            pieces.append(argument[start:])
            start = argument.find(marker, start + 1)
    if argument.lower().startswith("file:"):
        pieces.append(argument[5:])
    return [piece for piece in pieces if piece]


# The kernel follows a symbolic link before the '..' after it, so a lexical '..' under /proc or
# /dev goes elsewhere than it reads: /proc/thread-self/../.. is /proc/<pid>, /dev/fd/.. is
# /proc/self. Such a path is refused whatever it normalises to.
_LINK_DIRECTORIES = frozenset({"proc", "dev"})
# What /etc/mtab points to (/proc/mounts or ../proc/self/mounts): the mount table.
_ALLOWED_PROCESS_LINK_TARGET = re.compile(r"(?:(?:self|thread-self|[0-9]+)/(?:task/[0-9]+/)?)?mounts\Z")
# The command's own output pipes: links to /proc/self/fd/1 and 2 (sort -o /dev/stdout).
_OUTPUT_DEVICES = frozenset({"/dev/stdout", "/dev/stderr"})
_MAX_LINKS = 40


def _refused_lexically(path: str) -> bool:
    components = path.split("/")
    if ".." in components and _LINK_DIRECTORIES.intersection(components):
        return True
    normal = posixpath.normpath(path).lstrip("/")
    while normal.startswith("../"):
        normal = normal[3:]
    if normal == "proc" or normal.startswith("proc/"):
        return normal[len("proc/") :] not in ALLOWED_PROC_FILES
    return any(normal == device or normal.startswith(device + "/") for device in _REFUSED_DEVICES)


def _resolved_until_proc(path: str) -> str | None:
    """``path`` (absolute) with the links on disk followed until it reaches ``/proc``.

    Links under ``/proc`` are not followed: ``/proc/self/fd/1`` leads wherever the validating
    process's descriptor does, which says nothing about the command. None when a link cannot
    be read or the chain is too long (the kernel refuses such a path too).
    """
    done = "/"
    pending = [part for part in path.split("/") if part][::-1]
    links = 0
    while pending:
        if done == "/proc" or done.startswith("/proc/"):
            return posixpath.normpath(posixpath.join(done, *pending[::-1]))
        part = pending.pop()
        if part in (".", ""):
            continue
        if part == "..":
            done = posixpath.dirname(done)
            continue
        candidate = posixpath.join(done, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            done = candidate  # not a link (or missing): taken as written
            continue
        links += 1
        if links > _MAX_LINKS:
            return None
        if target.startswith("/"):
            done = "/"
        pending.extend(part for part in target.split("/")[::-1] if part)
    return done


def _refused_resolved(path: str) -> bool:
    """Whether an absolute path leads, through the links on disk, under /proc (or /dev/fd)."""
    if posixpath.normpath(path) in _OUTPUT_DEVICES or "\x00" in path:
        return False
    resolved = _resolved_until_proc(path)
    if resolved is None:
        return False
    if resolved == "/proc" or resolved.startswith("/proc/"):
        rest = resolved[len("/proc/") :]
        return rest not in ALLOWED_PROC_FILES and not _ALLOWED_PROCESS_LINK_TARGET.match(rest)
    return _refused_lexically(resolved)


def _refused(path: str) -> bool:
    named = ("/" in path or path.startswith("proc")) and ("proc" in path or "dev" in path)
    if named and _refused_lexically(path):
        return True
    return path.startswith("/") and _refused_resolved(path)


# Where installed programs live: an interpreter given a script there runs that program
# (``perl /usr/bin/debconf-apt-progress -- cmd``, ``bash /usr/bin/xvfb-run cmd``,
# ``python3 /usr/bin/pip3 install ...``), which the allowed list did not allow.
PROGRAM_DIRECTORIES = (
    "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/libexec",
    "/usr/local/libexec", "/usr/lib/git-core", "/usr/games", "/snap/bin",
    # and where installed software keeps its scripts (a directory with __main__.py runs as a
    # program: /usr/lib/google-cloud-sdk/.../tests, /usr/share/python-wheels/pip-*.whl)
    "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/share", "/usr/local/lib", "/usr/local/share",
    "/lib", "/lib64", "/opt", "/snap", "/nix/store", "/var/lib/gems", "/etc/alternatives",
)  # fmt: skip
INTERPRETERS = frozenset(
    {
        "python", "perl", "ruby", "node", "php", "lua", "sh", "nu", "pwsh", "julia", "Rscript",
        "R", "guile", "racket", "sbcl", "clisp", "ghc", "groovy", "scala", "elixir", "erl", "raku",
        "gnuplot", "octave", "bun", "osascript", "mongosh", "tclsh", "wish", "expect", "deno",
        "pypy", "debugpy",
    }
)  # fmt: skip


# Installed software beyond the program directories: package trees (node_modules,
# site-packages, a package manager's install tree) and archives an interpreter runs from
# inside (``python3 pip.whl/pip``, ``python3 app.pyz``): ``node .../npm/bin/npm-cli.js exec``
# is npm, which the allowed list refuses by name.
PACKAGE_TREES = (
    "node_modules", "site-packages", "dist-packages", "python-wheels", ".npm", ".yarn", ".pnpm",
    "pnpm", "gems", "vendor_perl", "site_perl", "perl5", "share/perl", "lib/perl", "share/ruby",
    "lib/ruby", "share/lua", "lib/lua", "share/php", "lib/php", "share/java", ".cargo",
)  # fmt: skip
_ARCHIVE_COMPONENT = re.compile(r"\.(?:whl|zip|egg|pyz|pyzw|jar|tgz|gem|phar)\Z", re.IGNORECASE)
# Interpreters with an option that looks the script up on PATH themselves (perl -S, ruby -S):
# the script is then an installed program the allowed list never saw.
_SEARCHING_INTERPRETERS = {"perl": frozenset("eEIiMmdDxFlC0V"), "ruby": frozenset("eIrCxEFKWT0il")}


# Round 5: a virtualenv's bin/ (``python3 /srv/venv/bin/pip3 config --global set ...`` wrote
# /etc/pip.conf with the sandbox off) is installed software too, and so is any other bin/,
# sbin/ or Scripts/ directory (a project's or a user's ~/.local/bin): the programs there are
# installed with their own names, which the allowed list judges, not an interpreter's.
PROGRAM_DIRECTORY_NAMES = frozenset({"bin", "sbin", "Scripts"})
_VIRTUALENV_MARKER = "pyvenv.cfg"


def _in_virtualenv(path: str) -> bool:
    """Whether a directory above ``path`` (absolute) holds ``pyvenv.cfg``: inside a virtualenv."""
    directory = posixpath.dirname(path)
    while directory not in ("/", ""):
        if os.path.isfile(posixpath.join(directory, _VIRTUALENV_MARKER)):
            return True
        directory = posixpath.dirname(directory)
    return False


def _is_installed(path: str) -> bool:
    if any(path == directory or path.startswith(directory + "/") for directory in PROGRAM_DIRECTORIES):
        return True
    lowered = path.lower()
    parts = [part for part in lowered.split("/") if part]
    if PROGRAM_DIRECTORY_NAMES.intersection(path.split("/")[:-1]):
        return True
    joined = "/" + "/".join(parts) + "/"
    if any("/" + tree + "/" in joined for tree in PACKAGE_TREES):
        return True
    if path.startswith("/") and _in_virtualenv(path):
        return True
    return any(_ARCHIVE_COMPONENT.search(part) for part in parts)


def _check_script_search(
    program: str, names: set[str], arguments: Sequence[str], trusted: frozenset[int]
) -> None:
    """Refuse ``-S`` (in any cluster) among perl's or ruby's options, before the script."""
    for name, value_letters in _SEARCHING_INTERPRETERS.items():
        if name not in names:
            continue
        for position, argument in enumerate(arguments):
            if argument == "--" or not argument.startswith("-") or argument == "-":
                break  # the script: what follows is its own arguments
            if position in trusted or argument.startswith("--"):
                continue
            for letter in argument[1:]:
                if letter == "S":
                    refuse(
                        f"argument {argument!r} of {program!r} makes {name} look its script up on "
                        "the search path, which runs an installed program the allowed commands "
                        "did not allow; name the script by its path"
                    )
                if letter in value_letters:
                    break


def check_installed_scripts(
    program: str, names: set[str], arguments: Sequence[str], trusted: frozenset[int]
) -> None:
    """Refuse an interpreter's argument that is installed software (a program, a package tree,
    an archive) or a script the interpreter looks up itself (``-S``)."""
    if not names & INTERPRETERS:
        return
    _check_script_search(program, names, arguments, trusted)
    for position, argument in enumerate(arguments):
        if position in trusted or "/" not in argument:
            continue
        path = posixpath.normpath(argument.split("=", 1)[-1])
        if _is_installed(path):
            refuse(
                f"argument {argument!r} of {program!r} is a file of installed software (a program, "
                "a package tree such as node_modules or site-packages, or an archive); "
                "an interpreter running it runs that program, which the allowed commands did not "
                "allow (list the program itself, or pin the command with a pattern)"
            )


def check_process_files(program: str, arguments: Sequence[str], trusted: frozenset[int]) -> None:
    """Refuse an argument naming a process's own files (``/proc/self/environ``, ``/dev/fd/0``)."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        for path in _paths_in(argument):
            if _refused(path):
                refuse(
                    f"argument {argument!r} of {program!r} names a process's own memory, "
                    "environment or open files (/proc/<pid>/..., /dev/fd), which a program can "
                    "read back as a script or copy into a file; only system-wide /proc files "
                    f"({', '.join(sorted(ALLOWED_PROC_FILES))}) may be named"
                )
