"""The kernel sandbox of one command: which files it may execute and where it may write.

Argument rules per program are a deny list at heart, and every program has option spellings
nobody listed (``gcc -wrapper``, ``shuf -o``, ``uniq IN OUT``). The sandbox is an allow list the
kernel enforces (Linux Landlock, applied by the reaper helper before it starts the command):

- **execute**: only the program's real path, its ELF interpreter (``PT_INTERP``), a script's
  ``#!`` interpreter (for ``#!/usr/bin/env X``: env and ``X`` found on the command's search
  path), the same again for each of those, git's own helper directory for git, the real
  program of a package's wrapper and tar's compressors (:func:`companion_programs`), and
  the paths of ``jobs_shell_sandbox_executables``;
- **write** (create, write, truncate, rename, remove): only a private temporary directory the
  runner makes per command and exports as ``TMPDIR``, ``/dev/null``, and the paths of
  ``jobs_shell_writable_paths``;
- **read**: everything but ``/proc``; there only the system-wide files of
  :data:`~.rules.paths.ALLOWED_PROC_FILES` and the command's own ``/proc/<pid>`` (so
  ``/proc/self`` for the command itself, not for the processes it starts). Red-team round 6
  read the worker's environment (its broker and backend credentials) through ``ps e``, awk
  building ``/proc/<pid>/environ`` at run time and ``grep -r /``: the kernel now refuses the
  read whatever the arguments looked like. Directories may be listed everywhere;
- **signals** (Landlock ABI 6 and later): only to processes the command started.

Nothing that may be executed may also be written in the same run (a command could otherwise
replace a program it may run): such settings are refused. The network is not restricted.
Imports nothing from Celery.
"""

from __future__ import annotations

import functools
import json
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell.landlock import abi_version
from celery_jobs_ext.shell.rules.paths import ALLOWED_PROC_FILES
from celery_jobs_ext.shell.workdir import is_normal_absolute_path

SANDBOX_SETTING = "jobs_shell_sandbox"
EXECUTABLES_SETTING = "jobs_shell_sandbox_executables"
WRITABLE_SETTING = "jobs_shell_writable_paths"
MODES = ("auto", "required", "off")

ABI_LIMIT_VARIABLE = "CELERY_JOBS_EXT_LANDLOCK_ABI"
"""Test hook, read from the worker's environment: an integer caps the Landlock ABI used
(``0``: behave as on a kernel without Landlock). It can only lower the ABI; "auto" then logs
the start-up warning and "required" refuses."""

ALWAYS_WRITABLE = ("/dev/null",)

# Where git keeps the programs of its subcommands (``git --exec-path``): its https transport
# and a few subcommands are programs there. Its shell scripts stay unrunnable: /bin/sh is not
# executable unless listed.
_GIT_EXEC_DIRS = ("/usr/lib/git-core", "/usr/libexec/git-core")
# Linux follows at most this many #! interpreters of interpreters.
_MAX_INTERPRETER_DEPTH = 5
_SHEBANG_BYTES = 256
_PT_INTERP = 3
# env options that take a value in the next word.
_ENV_VALUE_OPTIONS = frozenset({"-u", "--unset", "-C", "--chdir", "-P", "--path"})


@dataclass(frozen=True)
class SandboxPlan:
    """What the reaper restricts one command to; travels to it as JSON."""

    abi: int
    executables: tuple[str, ...]
    writable: tuple[str, ...]
    proc_files: tuple[str, ...] = tuple(sorted(ALLOWED_PROC_FILES))

    def to_json(self) -> str:
        return json.dumps(
            {"abi": self.abi, "exec": self.executables, "write": self.writable, "proc": self.proc_files}
        )


# -- settings ---------------------------------------------------------------------------


def checked_mode(value: object, setting: str = SANDBOX_SETTING) -> str:
    """Validate ``jobs_shell_sandbox``: one of ``auto``, ``required``, ``off``."""
    if not isinstance(value, str) or value not in MODES:
        raise ImproperlyConfigured(
            f"Setting {setting} = {value!r} is invalid: expected one of {', '.join(map(repr, MODES))}."
        )
    return value


def checked_paths(value: object, setting: str) -> tuple[str, ...]:
    """Validate a list of absolute, normalised paths (files or directories)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ImproperlyConfigured(
            f"Setting {setting} = {value!r} is invalid: expected a list of absolute paths."
        )
    for entry in value:
        if not is_normal_absolute_path(entry):
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(value)!r} is invalid: {entry!r} is not an absolute, "
                "normalised path such as '/srv/reports'."
            )
    return tuple(value)


def _beneath(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _conflict(executables: Sequence[str], writable: Sequence[str]) -> tuple[str, str] | None:
    """An (executable, writable) pair where one contains the other, by real path."""
    for executable in executables:
        real_executable = os.path.realpath(executable)
        for place in writable:
            real_place = os.path.realpath(place)
            if _beneath(real_executable, real_place) or _beneath(real_place, real_executable):
                return executable, place
    return None


def checked_writable_paths(
    value: object, executables: object, setting: str = WRITABLE_SETTING
) -> tuple[str, ...]:
    """Validate ``jobs_shell_writable_paths``, also against ``jobs_shell_sandbox_executables``.

    A path both writable and executable would let a command write a program and run it.
    """
    writable = checked_paths(value, setting)
    clash = _conflict(checked_paths(executables, EXECUTABLES_SETTING), writable)
    if clash:
        raise ImproperlyConfigured(
            f"Setting {setting} lists {clash[1]!r}, which overlaps {clash[0]!r} of "
            f"{EXECUTABLES_SETTING}: a command could write a program there and run it."
        )
    return writable


# -- the kernel -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _kernel_abi() -> int:
    return abi_version()


def kernel_abi() -> int:
    """The Landlock ABI the sandbox uses: the kernel's, capped by :data:`ABI_LIMIT_VARIABLE`."""
    abi = _kernel_abi()
    limit = os.environ.get(ABI_LIMIT_VARIABLE, "").strip()
    if limit.isdigit():
        abi = min(abi, int(limit))
    return abi


def startup_report(mode: str) -> tuple[bool, str]:
    """``(is_warning, message)`` for the worker's start-up log: is the sandbox on, at which ABI."""
    abi = kernel_abi()
    if mode == "off":
        return True, f"{SANDBOX_SETTING} = 'off': commands run without the kernel sandbox"
    if abi >= 1:
        scope = "signals scoped" if abi >= 6 else "signals not scoped (needs ABI 6)"
        return False, f"kernel sandbox active (Landlock ABI {abi}; {scope})"
    if mode == "required":
        return True, (
            f"{SANDBOX_SETTING} = 'required' but this kernel has no Landlock: every command will be refused"
        )
    return True, (
        "kernel sandbox unavailable (no Landlock: Linux 5.13 or later with the landlock LSM "
        "enabled): commands run under the argument rules only; set "
        f"{SANDBOX_SETTING} = 'required' to refuse them instead"
    )


# Programs that run any code given as an argument: a listed directory holding one lets every
# sandboxed command that can execute a path run it.
_CODE_RUNNERS = ("sh", "bash", "dash", "zsh", "ksh", "busybox", "env", "python3", "perl", "ruby", "node")


def executables_warnings(executables: Sequence[str]) -> list[str]:
    """Start-up warnings for listed directories that hold a shell or an interpreter."""
    warnings = []
    for entry in executables:
        if not os.path.isdir(entry):
            continue
        found = [name for name in _CODE_RUNNERS if os.path.isfile(os.path.join(entry, name))]
        if found:
            warnings.append(
                f"{EXECUTABLES_SETTING} lists the directory {entry!r}, which holds {', '.join(found)}: "
                "every sandboxed command may execute them; list the programs it needs as files instead"
            )
    return warnings


# -- what one command may execute -------------------------------------------------------


def elf_interpreter(path: str) -> str | None:
    """The ``PT_INTERP`` path of an ELF executable (its dynamic loader), or ``None``."""
    try:
        with open(path, "rb") as program:
            header = program.read(64)
            if len(header) < 52 or header[:4] != b"\x7fELF" or header[4] not in (1, 2):
                return None
            endian = "<" if header[5] == 1 else ">"
            if header[4] == 2:
                (phoff,) = struct.unpack_from(endian + "Q", header, 32)
                phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
                entry_format, offset_field, size_field = endian + "IIQQQQQQ", 2, 5
            else:
                (phoff,) = struct.unpack_from(endian + "I", header, 28)
                phentsize, phnum = struct.unpack_from(endian + "HH", header, 42)
                entry_format, offset_field, size_field = endian + "IIIIIIII", 1, 4
            entry_size = struct.calcsize(entry_format)
            if phentsize < entry_size:
                return None
            for index in range(min(phnum, 256)):
                program.seek(phoff + index * phentsize)
                entry = program.read(entry_size)
                if len(entry) < entry_size:
                    return None
                fields = struct.unpack(entry_format, entry)
                if fields[0] == _PT_INTERP:
                    program.seek(fields[offset_field])
                    name = program.read(min(fields[size_field], 4096)).split(b"\0", 1)[0]
                    return os.fsdecode(name) if name.startswith(b"/") else None
    except (OSError, struct.error):
        return None
    return None


def shebang(path: str) -> tuple[str, str] | None:
    """``(interpreter, optional argument)`` of a ``#!`` script, as Linux splits the line."""
    try:
        with open(path, "rb") as script:
            head = script.read(_SHEBANG_BYTES)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        return None
    interpreter, _, argument = line.replace(b"\t", b" ").partition(b" ")
    return os.fsdecode(interpreter), os.fsdecode(argument.strip(b" \t"))


def _env_target(argument: str) -> str | None:
    """The program ``#!/usr/bin/env [-S] [OPTIONS] [NAME=VALUE] PROGRAM`` runs."""
    words = argument.split()
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _ENV_VALUE_OPTIONS:
            skip = True
        elif word.startswith("-S") and len(word) > 2:
            return _env_target(word[2:])
        elif not word.startswith("-") and "=" not in word:
            return word
    return None


def _on_search_path(name: str, search_path: str) -> str | None:
    if "/" in name:
        return name if os.path.isabs(name) else None
    for directory in search_path.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if directory and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _add_program(path: str, found: list[str], search_path: str, depth: int = 0) -> None:
    real = os.path.realpath(path)
    if real in found or depth > _MAX_INTERPRETER_DEPTH or not os.path.isfile(real):
        return
    found.append(real)
    loader = elf_interpreter(real)
    if loader:
        _add_program(loader, found, search_path, depth + 1)
    script = shebang(real)
    if script and os.path.isabs(script[0]):
        interpreter, argument = script
        _add_program(interpreter, found, search_path, depth + 1)
        if os.path.basename(os.path.realpath(interpreter)) == "env":
            target = _env_target(argument)
            resolved = _on_search_path(target, search_path) if target else None
            if resolved:
                _add_program(resolved, found, search_path, depth + 1)
    if os.path.basename(real) == "git":
        prefix = os.path.dirname(os.path.dirname(real))
        for directory in (*_GIT_EXEC_DIRS, os.path.join(prefix, "libexec", "git-core")):
            if os.path.isdir(directory) and directory not in found:
                found.append(directory)


# Wrappers that execute their package's real program, and programs that run helpers which
# cannot run others (a compressor reads and writes streams; its writes are confined like the
# command's). Round 5 found Debian's psql and pg_dump (perl's pg_wrapper) denied the real
# binary and exiting 0 with nothing on stdout; tar -z failed for want of gzip. GNU tar starts
# its compressor as "/bin/sh -c gzip" (tar 1.34, measured), so tar also gets /bin/sh: inside
# the same sandbox it can execute only tar, the compressors and itself, and write only where
# tar could, while every tar option that hands the shell a command of the message's is
# refused by the argument rules.
_PG_WRAPPER = "pg_wrapper"
_PG_BINARIES = "/usr/lib/postgresql"
_TAR_NAMES = frozenset({"tar", "gtar"})
_TAR_SHELL = "/bin/sh"
_COMPRESSORS = ("gzip", "bzip2", "xz", "zstd", "lzip", "lzop", "lz4")
# GCC's drivers run their compiler proper (cc1, cc1plus: read a source, write assembly, execute
# nothing) from its library directory, and the assembler for -c; gcc -fsyntax-only failed
# without cc1 (round 5). Not collect2/ld (they run plugins and other programs) nor
# g++-mapper-server.
_GCC_DRIVER = re.compile(r"(?:[A-Za-z0-9_.]+-)*(?:gcc|g\+\+|c\+\+|cpp)(?:-[0-9.]+)?\Z")
_GCC_LIBRARIES = ("/usr/lib/gcc", "/usr/libexec/gcc", "/usr/lib64/gcc", "/usr/local/libexec/gcc")
_GCC_PROPER = ("cc1", "cc1plus", "cc1obj", "cc1objplus")
_ASSEMBLER = "as"


def _listing(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as program:
            return program.read(4) == b"\x7fELF"
    except OSError:
        return False


def companion_programs(program: str, search_path: str) -> list[str]:
    """The programs a wrapper or tar executes as part of its own work: ELF binaries only.

    ``pg_wrapper`` (Debian's ``psql``, ``pg_dump`` ...) runs the same name from
    ``/usr/lib/postgresql/<version>/bin``; ``tar`` runs the compressors of ``-z``, ``-j``,
    ``-J``, ``--zstd`` ... found on the search path, through ``/bin/sh -c``; GCC's drivers
    run ``cc1``/``cc1plus`` and ``as``. A script is never added: its interpreter would then
    be executable too.
    """
    real = os.path.realpath(program)
    name = os.path.basename(program)
    candidates: list[str] = []
    if os.path.basename(real) == _PG_WRAPPER:
        candidates = [os.path.join(_PG_BINARIES, version, "bin", name) for version in _listing(_PG_BINARIES)]
    elif _GCC_DRIVER.match(os.path.basename(real)):
        candidates = [
            os.path.join(root, triplet, version, proper)
            for root in _GCC_LIBRARIES
            for triplet in _listing(root)
            for version in _listing(os.path.join(root, triplet))
            for proper in _GCC_PROPER
        ]
        assembler = _on_search_path(_ASSEMBLER, search_path)
        candidates += [assembler] if assembler else []
    elif os.path.basename(real) in _TAR_NAMES or name in _TAR_NAMES:
        found = (_on_search_path(tool, search_path) for tool in _COMPRESSORS)
        candidates = [path for path in found if path and _is_elf(path)]
        candidates += [_TAR_SHELL] if candidates else []
    return [candidate for candidate in candidates if os.path.isfile(candidate) and _is_elf(candidate)]


def program_executables(program: str, search_path: str) -> tuple[str, ...]:
    """Everything the kernel must be allowed to execute to start ``program`` (an absolute path)."""
    found: list[str] = []
    _add_program(program, found, search_path)
    for companion in companion_programs(program, search_path):
        _add_program(companion, found, search_path)
    return tuple(found)


def plan_sandbox(
    program: str,
    *,
    mode: str,
    executables: Sequence[str],
    writable: Sequence[str],
    search_path: str,
) -> SandboxPlan | None:
    """The restrictions of one command, or ``None`` when it runs without the kernel sandbox.

    ``writable`` must already include the command's private temporary directory.

    Raises:
        ShellCommandNotAllowed: ``mode`` is "required" and the kernel has no Landlock, or a
            path the command may execute is also writable.
    """
    mode = checked_mode(mode)
    if mode == "off":
        return None
    abi = kernel_abi()
    if abi < 1:
        if mode == "required":
            raise ShellCommandNotAllowed(
                f"Command refused: {SANDBOX_SETTING} = 'required' and this kernel has no Landlock "
                "(Linux 5.13 or later with the landlock LSM enabled), so the command cannot be "
                f"sandboxed; run the worker on such a kernel or set {SANDBOX_SETTING} = 'auto'."
            )
        return None
    allowed = (*program_executables(program, search_path), *executables)
    places = (*writable, *ALWAYS_WRITABLE)
    clash = _conflict(allowed, places)
    if clash:
        raise ShellCommandNotAllowed(
            f"Command refused: {clash[0]!r} may be executed and {clash[1]!r} written in the same "
            f"run ({EXECUTABLES_SETTING}, {WRITABLE_SETTING}, TMPDIR): the command could replace "
            "a program it may run. Keep programs out of writable places."
        )
    return SandboxPlan(abi, tuple(dict.fromkeys(allowed)), tuple(dict.fromkeys(places)))
