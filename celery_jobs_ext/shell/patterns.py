"""Entries of ``jobs_allowed_shell_commands``: a program name, ``"*"``, or a sudoers-style pattern.

``"git"`` allows ``git`` with any arguments (under the per-program rules); ``"git -C /srv/repo
status"`` allows exactly that command; ``"du -sh /srv/*"`` allows ``du -sh`` on one entry of
``/srv``. A command matches a pattern word by word:

- a word without ``*`` or ``?`` matches only itself;
- in a word, ``*`` matches any run of characters except ``/`` and ``?`` one character except
  ``/``; as in a shell glob, at the start of a path segment they match neither a leading
  ``.`` (``/srv/*`` is not ``/srv/.env``) nor nothing (``/srv/*`` is not ``/srv/``); a word
  matched this way may not be ``.`` or ``..`` or contain such a path segment;
- in a URL (a word with ``scheme://``) a wildcard stays in the part it is written in: in
  the host part it matches host characters only (letters, digits, ``.``, ``-``, ``_``,
  ``~``; never ``@ : # ? \\ %``), so ``http://*.example.com/*`` is not
  ``http://127.0.0.1:6379#.example.com/x`` and ``https://example.com*`` is not
  ``https://example.com@127.0.0.1``; in the path it never matches ``#``, ``@`` or ``\\``
  (``*`` not ``?`` either; ``?`` may match the ``?`` of a query) unless the pattern spells them;
- a wildcard word matches an option-looking word (one starting with ``-``) only when the
  pattern word itself starts with ``-`` (``--since=*``, ``-n*``): ``"grep -E * f.log"`` never
  lets ``*`` be ``-f/etc/passwd``;
- ``...`` as the last pattern word matches any number of further words, options included:
  they are judged by the program's own rules exactly as for a bare entry (``"git -C /srv/repo
  ..."`` allows ``git -C /srv/repo log --oneline`` and refuses ``... -c alias.x=!sh``), so
  ``...`` never allows more than listing the program by bare name would;
- for programs whose argument is text their rules read in full (:data:`TEXT_PROGRAMS`:
  sqlite3's SQL and dot-commands, psql's and mysql's SQL), a whole-word ``*`` matches any
  one word that does not start with ``-``, ``/`` and ``.`` alike (``"sqlite3 -readonly
  /srv/app.db *"`` allows ``.tables`` and ``select 10/2``); the rules still refuse unsafe
  dot-commands, SQL functions and meta-commands.

A literal ``*`` or ``?`` cannot be required by a pattern. Imports nothing from Celery.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from celery_jobs_ext.errors import ImproperlyConfigured

ALLOWED_SETTING = "jobs_allowed_shell_commands"
ANY_PROGRAM = "*"
REST = "..."
TEXT_PROGRAMS = frozenset({"sqlite3", "psql", "mysql", "mariadb"})
"""Programs whose wildcard argument is text (SQL, dot-commands) their rules judge in full."""

_PROGRAM = re.compile(r"[A-Za-z0-9._+/-]+\Z")


@dataclass(frozen=True)
class AllowedEntry:
    """One parsed entry: the program and, for a pattern, the argument words it pins."""

    text: str
    program: str
    #: ``None`` for a bare name (any arguments); else the pattern's argument words.
    words: tuple[str, ...] | None

    def matches(self, arguments: Sequence[str]) -> tuple[int, ...] | None:
        """The positions of ``arguments`` matched by literal pattern words, or None if no match."""
        if self.words is None:
            return ()
        text = self.program.rsplit("/", 1)[-1] in TEXT_PROGRAMS
        return _match(self.words, tuple(arguments), text=text)


def parse_entry(text: str, setting: str = ALLOWED_SETTING) -> AllowedEntry:
    """Parse one entry of ``jobs_allowed_shell_commands``.

    Raises:
        ImproperlyConfigured: the entry is not a program name, path or pattern.
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"Setting {setting}: entry {text!r} is not a valid pattern ({error})."
        ) from None
    if not words:
        raise ImproperlyConfigured(f"Setting {setting}: entry {text!r} is empty.")
    program = words[0]
    if program == ANY_PROGRAM:
        if len(words) > 1:
            raise ImproperlyConfigured(
                f"Setting {setting}: entry {text!r}: '*' allows any program and takes no arguments."
            )
        return AllowedEntry(text, ANY_PROGRAM, None)
    if not _PROGRAM.match(program) or program.startswith("-") or "*" in program or "?" in program:
        raise ImproperlyConfigured(
            f"Setting {setting}: entry {text!r} must start with a program name or path "
            "(ASCII letters, digits, '.', '_', '+', '-', '/'), without wildcards."
        )
    if "/" in program and not program.startswith("/"):
        raise ImproperlyConfigured(
            f"Setting {setting}: entry {text!r} is a relative path, which would resolve against the "
            "working directory a message chooses; give the absolute path."
        )
    if len(words) == 1:
        return AllowedEntry(text, program, None)
    arguments = tuple(words[1:])
    if REST in arguments[:-1]:
        raise ImproperlyConfigured(f"Setting {setting}: entry {text!r}: '...' may only be the last word.")
    return AllowedEntry(text, program, arguments)


def parse_entries(entries: Sequence[str], setting: str = ALLOWED_SETTING) -> tuple[AllowedEntry, ...]:
    """Parse every entry (cached: the same tuple is parsed once per process)."""
    if isinstance(entries, str) or not isinstance(entries, (list, tuple, set, frozenset)):
        raise ImproperlyConfigured(
            f"Setting {setting} = {entries!r} is invalid: expected a list of program names or patterns."
        )
    for entry in entries:
        if not isinstance(entry, str):
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: entry {entry!r} is not a string."
            )
    return _parse_cached(tuple(entries), setting)


@lru_cache(maxsize=64)
def _parse_cached(entries: tuple[str, ...], setting: str) -> tuple[AllowedEntry, ...]:
    return tuple(parse_entry(entry, setting) for entry in entries)


# A URL in a pattern word: its wildcards stay inside the URL part they are written in.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_CHARACTER = "[A-Za-z0-9._~-]"
"""What ``*`` and ``?`` match in a URL's host part: never ``@ : # ? / \\`` or ``%``."""
_PATH_EXCLUDED = "/#@\\\\"
"""What they never match in its path (``*`` not ``?`` either): ``#`` and ``@`` start other parts."""


def _url_parts(word: str) -> tuple[int, int]:
    """Where the host part of a URL in ``word`` starts and ends (both ``len(word)`` if none)."""
    scheme = _SCHEME.search(word)
    if scheme is None or "*" in word[: scheme.end()] or "?" in word[: scheme.end()]:
        return len(word), len(word)
    host_end = word.find("/", scheme.end())
    return scheme.end(), len(word) if host_end < 0 else host_end


def _word_regex(word: str) -> re.Pattern[str]:
    """The pattern word as a regular expression, with a shell glob's rules for ``/`` and dots.

    In a URL (``scheme://``) a wildcard matches only host characters in the host part and
    never ``#``, ``@`` or ``\\`` in the path (``*`` not ``?`` either), so ``http://*.example.com/*``
    is not ``http://127.0.0.1:6379#.example.com/x`` and ``https://example.com*`` is not
    ``https://example.com@127.0.0.1``. ``?`` in the path may match a literal ``?`` (a query).
    """
    host_start, host_end = _url_parts(word)
    parts = []
    for index, char in enumerate(word):
        segment_start = index == 0 or word[index - 1] == "/"
        if host_start <= index < host_end and char in "*?":
            parts.append(_HOST_CHARACTER + {"*": "+" if segment_start else "*", "?": ""}[char])
        elif index >= host_end and char == "*":
            parts.append(f"(?!\\.)[^{_PATH_EXCLUDED}?]+" if segment_start else f"[^{_PATH_EXCLUDED}?]*")
        elif index >= host_end and char == "?":
            parts.append(f"[^{_PATH_EXCLUDED}.]" if segment_start else f"[^{_PATH_EXCLUDED}]")
        elif char == "*":
            # Like a shell glob: at the start of a path segment, not a hidden name and not empty.
            parts.append("(?!\\.)[^/]+" if segment_start else "[^/]*")
        elif char == "?":
            parts.append("[^/.]" if segment_start else "[^/]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


_DOT_SEGMENT = re.compile(r"(?:\A|/)\.\.?(?:/|\Z)")


def _word_matches(pattern: str, word: str, text: bool = False) -> bool | None:
    """True (by a wildcard), None (literally equal) or False."""
    if "*" not in pattern and "?" not in pattern:
        return None if word == pattern else False
    if word.startswith("-") and not pattern.startswith("-") and word != "-":
        return False
    if text and pattern == "*":
        return True  # SQL or a dot-command: the program's rules read it in full
    if _DOT_SEGMENT.search(word) and not _DOT_SEGMENT.search(pattern):
        return False
    return bool(_word_regex(pattern).match(word))


def _match(
    pattern: tuple[str, ...], arguments: tuple[str, ...], text: bool = False
) -> tuple[int, ...] | None:
    literal: list[int] = []
    if pattern and pattern[-1] == REST:
        fixed = pattern[:-1]
        if len(arguments) < len(fixed):
            return None
    else:
        fixed = pattern
        if len(arguments) != len(fixed):
            return None
    for index, (expected, word) in enumerate(zip(fixed, arguments[: len(fixed)], strict=True)):
        verdict = _word_matches(expected, word, text)
        if verdict is False:
            return None
        if verdict is None:
            literal.append(index)
    return tuple(literal)
