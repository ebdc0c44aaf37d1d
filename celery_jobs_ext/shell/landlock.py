"""The Linux Landlock system calls, through ctypes: an allow list of what a process may do.

Standard library only and no import from the package: the reaper helper (run as ``python -I
-S``, with no package on its path) loads this file by its path, and the worker imports it to
learn the kernel's Landlock ABI. :func:`restrict` confines the calling process and every
process it starts afterwards: it may execute only the files and directories of
``executables``, create, write, truncate, rename and remove only beneath ``writable``, read
files everywhere but under ``/proc`` (there only the files named in ``proc_files`` and, once
:func:`allow_own_process` is called in it, the process's own ``/proc/<pid>``), and (ABI 6 and
later) send signals only to processes inside its own domain. Directories may be listed
everywhere. The network and device ioctls are not handled, so they stay as the user's
permissions allow.

It also sets ``PR_SET_NO_NEW_PRIVS`` (Landlock requires it of an unprivileged caller, and we
want it anyway): setuid and file-capability programs gain nothing when executed.

Why not a PyPI package (``landlock``, ``landlockpy``): the helper runs as ``python -I -S``,
without site-packages, and the three system calls and two structures below are all it needs.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from collections.abc import Iterable

# The same numbers on every architecture (the unified system call table since Linux 5.13).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
SCOPE_SIGNAL = 1 << 1  # ABI 6

# What a rule on a file (not a directory) may grant; the kernel refuses a rule with more.
_FILE_ACCESS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
# Writable places never get MAKE_CHAR/MAKE_BLOCK: a privileged command could otherwise make a
# device node of a disk in its temporary directory and write the disk through it.
_WRITE_ACCESS = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
_WRITE_ACCESS |= MAKE_SYM | REFER | TRUNCATE
_READ_ACCESS = READ_FILE | READ_DIR
_PROC = "/proc"


class LandlockError(OSError):
    """The kernel refused to set up the sandbox (the message says which step)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (not Linux, too old, disabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        version = int(libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


def handled_access(abi: int) -> int:
    """The filesystem accesses the sandbox decides at ``abi``: execution, reads, every kind of write."""
    handled = EXECUTE | _READ_ACCESS | _WRITE_ACCESS | MAKE_CHAR | MAKE_BLOCK
    if abi < 2:
        handled &= ~REFER
    if abi < 3:
        handled &= ~TRUNCATE
    return handled


def _check(result: int, step: str) -> int:
    if result < 0:
        number = ctypes.get_errno()
        raise LandlockError(number, f"Landlock {step} failed: {os.strerror(number)}")
    return result


def _add_rules(libc: ctypes.CDLL, ruleset: int, paths: Iterable[str], access: int, handled: int) -> None:
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a path that does not exist allows nothing, which is what we want
        try:
            allowed = access & handled
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                allowed &= _FILE_ACCESS
            if not allowed:
                continue
            rule = _PathBeneathAttr(allowed_access=allowed, parent_fd=fd)
            _check(
                libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0),
                f"add_rule ({path})",
            )
        finally:
            os.close(fd)


def _proc_mounts(mountinfo: str = "/proc/self/mountinfo") -> set[str]:
    """Mount points of every procfs (``/proc``, and any other a container or a bind made)."""
    found = {_PROC}
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as lines:
            for line in lines:
                fields = line.split()
                if " - " in line and line.split(" - ", 1)[1].split()[:1] == ["proc"] and len(fields) > 4:
                    point = fields[4]
                    for code in ("\\040", "\\011", "\\012", "\\134"):
                        point = point.replace(code, chr(int(code[1:], 8)))
                    found.add(point)
    except OSError:
        pass
    return found


def _granted(directory: str, excluded: set[str], depth: int = 0) -> list[str]:
    """``directory``, or (when an excluded mount lies beneath) its entries but that one."""
    inside = [point for point in excluded if point.startswith(directory.rstrip("/") + "/")]
    if not inside:
        return [directory]
    if depth > 32:
        return []
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    places = []
    for entry in entries:
        path = os.path.join(directory, entry)
        if path not in excluded and not os.path.islink(path):
            places += _granted(path, excluded, depth + 1)
    return places


def readable_places(proc_files: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(directories, files)``: where reads are allowed, everything but the processes' data.

    A Landlock rule grants beneath a directory, and there are no exceptions to a grant, so
    ``/proc`` is kept out by granting each other entry of ``/`` (a symlinked one such as
    ``/bin -> usr/bin`` is granted at its target; one leading into ``/proc`` is skipped), and
    under ``/proc`` only the system-wide files of ``proc_files``. A procfs mounted elsewhere
    is kept out the same way: the directories above it are granted entry by entry. ``/``
    itself gets READ_DIR, which reaches ``/proc`` too: names of directories and files may be
    listed everywhere (``ls /``, ``find / -name``), but no file under ``/proc`` may be read
    unless granted.
    """
    files = [f"{_PROC}/{name}" for name in proc_files]
    excluded = _proc_mounts()
    try:
        entries = sorted(os.listdir("/"))
    except OSError:
        entries = []
    directories = []
    for entry in entries:
        real = os.path.realpath("/" + entry)
        if real == "/" or any(real == point or real.startswith(point + "/") for point in excluded):
            continue
        directories += _granted(real, excluded)
    return directories, files


def create_ruleset(
    abi: int, executables: Iterable[str], writable: Iterable[str], proc_files: Iterable[str] = ()
) -> int:
    """A Landlock ruleset (its fd) allowing only what the arguments list; nothing enforced yet.

    Arguments:
        abi: The ABI version to use (at most the kernel's): decides which accesses are handled
            and whether signals are scoped.
        executables: Files (or directories, for everything beneath) that may be executed; also
            what the kernel loads as an ELF interpreter or a script's ``#!`` interpreter.
        writable: Files or directories beneath which files may be written, created, truncated,
            renamed and removed (devices never made).
        proc_files: Names of the files under ``/proc`` that may be read (``cpuinfo``,
            ``pressure/cpu``); everything else under ``/proc`` stays unreadable but the
            process's own directory, which :func:`allow_own_process` grants in the process.

    Raises:
        LandlockError: ``abi`` is below 1, or a system call failed.
    """
    if abi < 1:
        raise LandlockError(0, "Landlock is not available")
    libc = _libc()
    handled = handled_access(abi)
    attr = _RulesetAttr(handled_access_fs=handled, handled_access_net=0, scoped=0)
    size = ctypes.sizeof(ctypes.c_uint64)
    if abi >= 6:
        attr.scoped = SCOPE_SIGNAL
        size = ctypes.sizeof(_RulesetAttr)
    ruleset = _check(
        libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0), "create_ruleset"
    )
    try:
        _add_rules(libc, ruleset, executables, EXECUTE, handled)
        _add_rules(libc, ruleset, writable, _WRITE_ACCESS, handled)
        directories, files = readable_places(proc_files)
        _add_rules(libc, ruleset, ["/"], READ_DIR, handled)
        _add_rules(libc, ruleset, directories, _READ_ACCESS, handled)
        _add_rules(libc, ruleset, files, READ_FILE, handled)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def allow_own_process(ruleset: int) -> None:
    """Let the calling process read its own ``/proc/<pid>`` (so ``/proc/self``): call it in
    the process that will be confined, between fork and exec, where the pid is final.

    Its descendants have other pids, so their ``/proc/self`` stays unreadable.
    """
    # /proc/self, not /proc/<getpid()>: the /proc mounted may belong to another pid namespace.
    _add_rules(_libc(), ruleset, [f"{_PROC}/self"], _READ_ACCESS, handled_access(1))


def enforce(ruleset: int) -> None:
    """Confine the calling thread (the whole process, if it has one thread) and its future
    children to ``ruleset``; there is no way back. Safe between fork and exec."""
    libc = _libc()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "restrict_self")


def restrict(
    abi: int, executables: Iterable[str], writable: Iterable[str], proc_files: Iterable[str] = ()
) -> None:
    """Confine this process and its future children: :func:`create_ruleset`,
    :func:`allow_own_process`, then :func:`enforce`."""
    ruleset = create_ruleset(abi, executables, writable, proc_files)
    try:
        allow_own_process(ruleset)
        enforce(ruleset)
    finally:
        os.close(ruleset)
