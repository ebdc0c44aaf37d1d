"""The Linux Landlock system calls, through ctypes: an allow list of what a process may do.

Standard library only and no import from the package: the reaper helper (run as ``python -I
-S``, with no package on its path) loads this file by its path, and the worker imports it to
learn the kernel's Landlock ABI. :func:`restrict` confines the calling process and every
process it starts afterwards: it may execute only the files and directories of
``executables``, create, write, truncate, rename and remove only beneath ``writable``, and (ABI
6 and later) send signals only to processes inside its own domain. Reads, the network and
device ioctls are not handled, so they stay as the user's permissions allow.

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
    """The filesystem accesses the sandbox decides at ``abi``: execution and every kind of write."""
    handled = EXECUTE | _WRITE_ACCESS | MAKE_CHAR | MAKE_BLOCK
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


def create_ruleset(abi: int, executables: Iterable[str], writable: Iterable[str]) -> int:
    """A Landlock ruleset (its fd) allowing only what the arguments list; nothing enforced yet.

    Arguments:
        abi: The ABI version to use (at most the kernel's): decides which accesses are handled
            and whether signals are scoped.
        executables: Files (or directories, for everything beneath) that may be executed; also
            what the kernel loads as an ELF interpreter or a script's ``#!`` interpreter.
        writable: Files or directories beneath which files may be written, created, truncated,
            renamed and removed (devices never made).

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
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def enforce(ruleset: int) -> None:
    """Confine the calling thread (the whole process, if it has one thread) and its future
    children to ``ruleset``; there is no way back. Safe between fork and exec."""
    libc = _libc()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "restrict_self")


def restrict(abi: int, executables: Iterable[str], writable: Iterable[str]) -> None:
    """Confine this process and its future children: :func:`create_ruleset` then :func:`enforce`."""
    ruleset = create_ruleset(abi, executables, writable)
    try:
        enforce(ruleset)
    finally:
        os.close(ruleset)
