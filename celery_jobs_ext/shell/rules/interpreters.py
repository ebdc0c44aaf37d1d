"""Interpreters: options that smuggle code or write files without ``-e``/``-c``.

The table refuses the options whose job is to run code (``perl -e``, ``python -c``,
``node --eval``). These rules cover the options that do it as a side effect:

- perl pastes a ``-F`` pattern that starts with ``/``, ``'`` or ``"`` into the program
  text (``our @F=split(PATTERN);``), so it is code; an undelimited pattern is quoted by perl
  and stays a pattern (``perl -F: -lane ...`` passes).
- python imports the module named by a dotted ``-W`` warning category
  (``-W ignore::module.Class`` runs ``module``); and ``-X`` options are allowed by name
  (``pycache_prefix``, ``perf`` and ``presite`` write files or import code).
- node (and V8 behind it) has many options that write a file (profiles, traces, reports,
  snapshots, key logs) or load code or configuration: any option whose name contains one of
  :data:`_NODE_RISKY_WORDS` is refused, with ``_`` read as ``-`` as node does, and with one
  dash as well as two (V8 reads ``-prof`` as ``--prof``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

# Letters of perl's short options that take the rest of the cluster as their value.
_PERL_VALUE_LETTERS = frozenset("eEIiMmdDxFlC0V")
_PERL_CODE_DELIMITERS = ("/", "'", '"')

_PYTHON_VALUE_LETTERS = frozenset("cmWXQ")
# -X options that neither write files nor import code chosen by their value.
_PYTHON_SAFE_X = frozenset(
    {
        "dev", "utf8", "importtime", "faulthandler", "tracemalloc", "showrefcount",
        "no_debug_ranges", "frozen_modules", "warn_default_encoding", "int_max_str_digits",
        "cpu_count", "gil", "thread_inherit_context", "context_aware_warnings",
        "disable_remote_debug", "disable-remote-debug", "lazy_imports",
    }
)  # fmt: skip

_NODE_RISKY_WORDS = (
    "prof", "perf", "dir", "file", "log", "report", "snapshot", "trace-event", "redirect",
    "keylog", "config", "sea", "destination", "blob", "heap", "watch", "policy", "loader",
    "import", "require", "preload", "inspect", "debug", "env", "eval", "print", "test",
    "experimental-permission", "allow-", "openssl", "icu", "wasi", "addons", "dump",
)  # fmt: skip
_NODE_RISKY_EXACT = frozenset({"--run", "--check-path"})


def _short_values(argument: str, value_letters: frozenset[str]) -> list[tuple[str, str]]:
    """``(letter, value)`` for each value-taking letter of a short-option cluster."""
    if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
        return []
    found = []
    for index, letter in enumerate(argument[1:], start=1):
        if letter in value_letters:
            found.append((letter, argument[index + 1 :]))
            break
    return found


def check_perl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a ``-F`` pattern perl would paste into its code (``-F/x/);system(...);(/``)."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        for letter, value in _short_values(argument, _PERL_VALUE_LETTERS):
            if letter == "F" and value.startswith(_PERL_CODE_DELIMITERS):
                refuse(
                    f"argument {argument!r} of {program!r} gives -F a pattern in {value[0]!r} "
                    "delimiters, which perl pastes into its program as code; write the pattern "
                    "without delimiters (perl -F: ...)"
                )


def check_python(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse ``-W`` categories in a module (imported), ``-X`` options outside the safe set,
    and scripts of the interpreter's own library."""
    _check_python_script(program, arguments, trusted)
    script = python_script_position(arguments)
    for position, argument in enumerate(arguments):
        if script is not None and position > script:
            break  # the script's own arguments
        if position in trusted:
            continue
        for letter, value in _short_values(argument, _PYTHON_VALUE_LETTERS):
            if not value:
                value = arguments[position + 1] if position + 1 < len(arguments) else ""
            if letter == "W" and "." in [*value.split(":"), "", "", ""][2]:
                refuse(
                    f"argument {value!r} of {program!r} names a warning category in a module, "
                    "which python imports (running that module's code)"
                )
            if letter == "X" and value.split("=", 1)[0] not in _PYTHON_SAFE_X:
                refuse(
                    f"-X {value!r} of {program!r} is not one of the -X options jobs.shell allows "
                    f"({', '.join(sorted(_PYTHON_SAFE_X))}); others write files or import code"
                )


# A script inside the interpreter's own library: the standard library has scripts that
# evaluate their arguments (timeit.py runs its statement, profile.py -o writes a file, pdb.py,
# trace.py, code.py ...), and so do installed packages; they are -c/-m under another name.
_PYTHON_LIBRARY = re.compile(r"(?:\A|/)lib(?:64)?/(?:python[0-9.]*(?:\.zip)?|pypy[0-9.]*)(?:/|\Z)")
_PYTHON_EVALUATING_SCRIPTS = frozenset(
    {
        "timeit.py", "profile.py", "cProfile.py", "pdb.py", "trace.py", "runpy.py", "code.py",
        "doctest.py", "unittest", "__main__.py", "pydoc.py", "site.py", "compileall.py",
        "py_compile.py", "zipapp.py", "venv", "ensurepip", "idlelib", "pstats.py", "cgitb.py",
    }
)  # fmt: skip
_PYTHON_LONG_WITH_VALUE = frozenset({"--check-hash-based-pycs"})


def python_script_position(arguments: Sequence[str]) -> int | None:
    """The position of the script operand python runs (after its options), if any.

    Everything after it is the script's own arguments (``python3 app.py -c conf.yml``).
    """
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument == "--":
            return position + 1 if position + 1 < len(arguments) else None
        if argument in _PYTHON_LONG_WITH_VALUE:
            position += 2
            continue
        if argument.startswith("-") and argument != "-":
            values = _short_values(argument, _PYTHON_VALUE_LETTERS)
            position += 2 if values and not values[0][1] else 1
            continue
        return position
    return None


def _check_python_script(program: str, arguments: Sequence[str], trusted: frozenset[int]) -> None:
    position = python_script_position(arguments)
    if position is None or position in trusted:
        return
    script = os.path.normpath(arguments[position])
    if _PYTHON_LIBRARY.search(script) or os.path.basename(script) in _PYTHON_EVALUATING_SCRIPTS:
        refuse(
            f"script {arguments[position]!r} of {program!r} is inside the interpreter's own "
            "library, whose scripts evaluate their arguments (timeit.py, profile.py -o, pdb.py "
            "...) like -c and -m; run the application's own script"
        )


def check_node(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse node/V8 options that write files (profiles, traces, reports) or load code."""
    for position, argument in enumerate(arguments):
        if position in trusted or not argument.startswith("-") or argument in ("-", "--"):
            continue
        name = argument.split("=", 1)[0].replace("_", "-").lower()
        if not name.startswith("--"):
            # V8 reads its flags with one dash too (node -prof writes a log): a one-dash word
            # longer than a short-option cluster is read both ways.
            name = "-" + name
        if name in _NODE_RISKY_EXACT or any(word in name for word in _NODE_RISKY_WORDS):
            refuse(
                f"argument {argument!r} of {program!r} is a node option that can write a file "
                "(profile, trace, report, snapshot, log) or load code or configuration"
            )


# Ruby's long options that write files (YJIT logs and perf maps, exit traces) or pass flags
# to the JIT's C compiler.
_RUBY_RISKY_WORDS = ("log", "perf", "trace", "debug", "dump-file", "mjit", "rjit-", "jit-")


def check_ruby(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse ruby's long options that write files or hand flags to the JIT's compiler."""
    for position, argument in enumerate(arguments):
        if position in trusted or not argument.startswith("--") or argument == "--":
            continue
        name = argument.split("=", 1)[0].lower()
        if any(word in name for word in _RUBY_RISKY_WORDS):
            refuse(
                f"argument {argument!r} of {program!r} is a ruby option that writes a file or "
                "passes flags to the JIT's compiler"
            )


# HotSpot options that run a command (OnError), load an agent or write files, by the words
# in their names; an @argfile reads more options from a file.
_JAVA_RISKY_PREFIXES = ("-javaagent", "-agentlib", "-agentpath", "-xlog", "-xloggc", "-xbootclasspath", "@")
_JAVA_RISKY_XX_WORDS = (
    "onerror", "onoutofmemory", "file", "path", "dump", "log", "flags", "options", "agent",
    "command", "directory", "dir", "archive", "cds", "perf",
)  # fmt: skip


def check_java(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse JVM options that run a command (``-XX:OnError=``), load agents or write files."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        lowered = argument.lower()
        xx_name = lowered[4:].lstrip("+-").split("=", 1)[0] if lowered.startswith("-xx:") else ""
        if lowered.startswith(_JAVA_RISKY_PREFIXES) or any(word in xx_name for word in _JAVA_RISKY_XX_WORDS):
            refuse(
                f"argument {argument!r} of {program!r} makes the JVM run a command, load an agent, "
                "read options from a file or write a file"
            )
