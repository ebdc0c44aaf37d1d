"""Files a program writes because an option or operand names them: one table, one reader.

Many programs write the file an option names (``sort -o``, ``shuf --output``, ``sdiff -o``),
an operand in a given position (``uniq IN OUT``, ``cp SRC DEST``, ``tee FILE``, ``touch FILE``),
or files of their own choosing unless a mode says otherwise (``split``, ``csplit``, ``gzip
FILE`` replaces it with ``FILE.gz``, ``unzip`` extracts, ``tar -x``, ``mktemp``). Under a bare
name none of that is what the administrator allowed: each program in :data:`OUTPUT_RULES`
may only write standard output (``/dev/stdout``, ``/dev/null``, and ``-`` where the program
reads it so: ``sort -o -`` creates a file named ``-``), and anything else needs an argument
pattern that spells the output out (``"sort -o /srv/out/sorted.txt /srv/in/*.txt"``).

Options are read with getopt_long's grammar: clusters of short letters up to the first one
that takes a value, ``--long=value`` or ``--long value``, and unambiguous abbreviations of
long options (``--outp=x`` is ``--output``); ``--`` ends the options. A word whose option
takes a separate value is that value, not an operand; a program's unknown options are taken
to have none (which only makes more operands, so more is checked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse

STANDARD_OUTPUTS = frozenset({"/dev/stdout", "/dev/null"})
_WITH_DASH = STANDARD_OUTPUTS | {"-"}


@dataclass(frozen=True)
class OutputRule:
    """How one program names the files it writes (see the module docstring)."""

    #: options whose value is a file written (``-o``, ``--output``, ``of=`` for dd's operands)
    options: tuple[str, ...] = ()
    #: short letters and long options that take a value, so the next word is not an operand
    value_letters: str = ""
    value_long: tuple[str, ...] = ()
    #: which operands are written: "none", "all", "after-first" (uniq), "last" (cp), "first" (zip)
    operands: str = "none"
    #: writes files whatever the operands unless one of ``modes`` is given (split, csplit, unzip)
    always: bool = False
    #: options (short letters in a cluster, or long options) under which nothing is written
    modes: tuple[str, ...] = ()
    #: options that must be present for the operand rule to apply (ptx -G); empty: always
    when: tuple[str, ...] = ()
    #: values that mean standard output
    harmless: frozenset[str] = STANDARD_OUTPUTS
    #: the first operand is a command (7z x), judged even when a pattern's wildcard matched it
    command_first: bool = False


_COMPRESSOR = OutputRule(
    options=("-o", "--output", "--output-dir-flat", "--output-dir-mirror"),
    value_letters="SbTMDoqwL",
    value_long=("--suffix", "--threads", "--memlimit", "--memory", "--output", "--quality", "--window"),
    operands="all",
    modes=("-c", "--stdout", "--to-stdout", "-t", "--test", "-l", "--list"),
)
_REMOVER = OutputRule(operands="all")
_METADATA = OutputRule(operands="all", value_long=("--reference",))

OUTPUT_RULES: Mapping[str, OutputRule] = MappingProxyType(
    {
        "sort": OutputRule(
            options=("-o", "--output"),
            value_letters="kotST",
            value_long=(
                "--key", "--output", "--field-separator", "--buffer-size", "--temporary-directory",
                "--batch-size", "--compress-program", "--files0-from", "--parallel",
                "--random-source", "--sort",
            ),
        ),
        "shuf": OutputRule(
            options=("-o", "--output"),
            value_letters="ino",
            value_long=("--input-range", "--head-count", "--output", "--random-source"),
        ),
        "uniq": OutputRule(
            value_letters="fsw",
            value_long=("--skip-fields", "--skip-chars", "--check-chars"),
            operands="after-first",
            harmless=_WITH_DASH,
        ),
        "ptx": OutputRule(
            value_letters="bgiowFMSW",
            value_long=(
                "--break-file", "--gap-size", "--ignore-file", "--only-file", "--width",
                "--flag-truncation", "--macro-name", "--sentence-regexp", "--word-regexp",
            ),
            operands="after-first",
            when=("-G", "--traditional"),
        ),
        "sdiff": OutputRule(
            options=("-o", "--output"),
            value_letters="ow",
            value_long=("--output", "--width", "--diff-program"),
        ),
        "tee": OutputRule(operands="all"),
        "sponge": OutputRule(operands="all"),
        "touch": OutputRule(
            operands="all", value_letters="drt", value_long=("--date", "--reference", "--time")
        ),
        "truncate": OutputRule(operands="all", value_letters="rs", value_long=("--reference", "--size")),
        "fallocate": OutputRule(operands="all", value_letters="lo", value_long=("--length", "--offset")),
        "cp": OutputRule(
            options=("-t", "--target-directory"),
            value_letters="St",
            value_long=("--suffix", "--target-directory"),
            operands="last",
        ),
        "mv": OutputRule(operands="all", value_letters="St", value_long=("--suffix", "--target-directory")),
        "install": OutputRule(
            operands="all",
            value_letters="gmoSt",
            value_long=("--group", "--mode", "--owner", "--suffix", "--target-directory", "--strip-program"),
        ),
        "ln": OutputRule(operands="all", value_letters="St", value_long=("--suffix", "--target-directory")),
        "link": _REMOVER,
        "rm": _REMOVER,
        "rmdir": _REMOVER,
        "unlink": _REMOVER,
        "shred": OutputRule(operands="all", value_letters="ns", value_long=("--iterations", "--size")),
        "mkdir": OutputRule(operands="all", value_letters="m", value_long=("--mode",)),
        "mkfifo": OutputRule(operands="all", value_letters="m", value_long=("--mode",)),
        "mknod": OutputRule(operands="all", value_letters="m", value_long=("--mode",)),
        "rename": OutputRule(operands="all"),
        "chmod": _METADATA,
        "chown": _METADATA,
        "chgrp": _METADATA,
        "chattr": _METADATA,
        "chcon": _METADATA,
        "setfacl": _METADATA,
        "setfattr": _METADATA,
        "split": OutputRule(always=True),
        "csplit": OutputRule(always=True),
        "mktemp": OutputRule(always=True, modes=("-u", "--dry-run")),
        "patch": OutputRule(
            options=("-o", "--output", "-r", "--reject-file"),
            value_letters="BdDFiporVYzg",
            always=True,
            modes=("--dry-run",),
        ),
        "unzip": OutputRule(always=True, modes=("-l", "-p", "-t", "-v", "-c", "-z", "-Z")),
        "zip": OutputRule(
            options=("-O", "--output-file", "-b", "--temp-path"),
            value_letters="bnOPstZ",
            value_long=("--temp-path", "--suffixes", "--output-file", "--password", "--split-size"),
            operands="first",
            harmless=_WITH_DASH,
        ),
        "dd": OutputRule(options=("of=",)),
        "gzip": _COMPRESSOR,
        "blkid": OutputRule(options=("-c", "--cache-file"), value_letters="cosptLUnSO"),
        "yq": OutputRule(options=("-i", "--inplace")),
        "ffmpeg": OutputRule(always=True, modes=("-version", "-h", "-help", "--help", "-formats", "-codecs")),
        "ffprobe": OutputRule(options=("-o", "-report", "-dump_attachment")),
        "magick": OutputRule(operands="last-word", harmless=_WITH_DASH | {"null:", "info:"}),
        "zstdcat": OutputRule(
            options=("-o", "--output-dir-flat", "--output-dir-mirror"), value_letters="oTD"
        ),
        "m4": OutputRule(
            options=("-o", "--error-output", "--debugfile", "-F", "--freeze-state"),
            value_letters="oFDUdlIRst",
        ),
        "cpio": OutputRule(always=True, modes=("-t", "--list")),
        # the first operand is the command: l(ist), t(est), i(nfo), h(ash), b(enchmark) write nothing
        "7z": OutputRule(operands="first", harmless=frozenset({"l", "t", "i", "h", "b"}), command_first=True),
        "unrar": OutputRule(
            operands="first",
            harmless=frozenset({"l", "lt", "lta", "lb", "v", "vt", "vta", "vb", "t", "p"}),
            command_first=True,
        ),
        "mogrify": OutputRule(operands="all"),
    }
)  # fmt: skip
"""Output rules per program family (other names in :data:`OUTPUT_FAMILIES`)."""

OUTPUT_FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            ("gunzip", "pigz", "unpigz", "bzip2", "bunzip2", "pbzip2", "xz", "unxz", "lzma", "unlzma",
             "lzip", "lz4", "unlz4", "zstd", "unzstd", "pzstd", "brotli", "lzop", "compress",
             "uncompress", "lbzip2", "plzip", "zstdmt"),
            "gzip",
        ),
        "gcp": "cp", "gmv": "mv", "ginstall": "install", "gtouch": "touch", "gsort": "sort",
        "convert": "magick", "composite": "magick", "montage": "magick", "compare": "magick",
        "stream": "magick", "file-rename": "rename", "prename": "rename", "7za": "7z", "7zr": "7z",
        "7zz": "7z", "unzstd": "gzip",
    }
)  # fmt: skip

_INFORMATION = frozenset({"--help", "--version"})
_MAGICK_STDOUT = re.compile(r"[A-Za-z0-9]+:-\Z")


def _long_match(word: str, options: Sequence[str]) -> str | None:
    """The long option of ``options`` that ``word`` spells or unambiguously abbreviates."""
    name = word.split("=", 1)[0]
    if len(name) <= 2 or not name.startswith("--"):
        return None
    if name in options:
        return name
    found = [option for option in options if option.startswith(name)]
    return found[0] if found else None


def _short_letters(word: str, value_letters: str) -> tuple[str, str]:
    """The letters of a short cluster up to a value letter, and that value letter (or '')."""
    letters = ""
    for index, letter in enumerate(word[1:], start=1):
        letters += letter
        if letter in value_letters:
            return letters, word[index + 1 :] or "\0next"
    return letters, ""


@dataclass
class _Reading:
    operands: list[int]
    written: list[tuple[int, str]]  # (position, value) of output options
    modes: bool


def _read(rule: OutputRule, arguments: Sequence[str]) -> _Reading:
    reading = _Reading([], [], False)
    long_options = tuple(
        o for o in (*rule.value_long, *rule.options, *rule.modes, *rule.when) if o.startswith("--")
    )
    short_outputs = "".join(o[1] for o in rule.options if len(o) == 2 and o[0] == "-")
    value_letters = rule.value_letters + short_outputs
    single_words = tuple(
        o for o in (*rule.options, *rule.modes) if o.startswith("-") and len(o) > 2 and o[1] != "-"
    )
    position = 0
    options_done = False
    while position < len(arguments):
        word = arguments[position]
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if options_done or word == "-" or not word.startswith("-"):
            equals = next((o for o in rule.options if o.endswith("=") and word.startswith(o)), None)
            if equals:
                reading.written.append((position, word[len(equals) :]))
            else:
                reading.operands.append(position)
        elif word == "--":
            options_done = True
        elif word.split("=", 1)[0] in single_words:  # -report, -dump_attachment, -version
            if word in rule.modes:
                reading.modes = True
            if word.split("=", 1)[0] in rule.options:
                reading.written.append((position, word.partition("=")[2] or following))
        elif word.startswith("--"):
            option = _long_match(word, long_options)
            takes_value = option in rule.value_long or option in rule.options
            value = word.partition("=")[2] if "=" in word else following
            if option in rule.modes or option in rule.when:
                reading.modes = reading.modes or option in rule.modes
            if option in rule.options:
                reading.written.append((position, value))
            if takes_value and "=" not in word:
                position += 1
        else:
            letters, value = _short_letters(word, value_letters)
            if any(len(mode) == 2 and mode[1] in letters for mode in rule.modes):
                reading.modes = True
            if value == "\0next":
                value = following
                start, position = position, position + 1
            else:
                start = position
            if value and letters[-1] in short_outputs:
                reading.written.append((start, value))
        position += 1
    return reading


def _present(options: Sequence[str], arguments: Sequence[str]) -> bool:
    for word in arguments:
        for option in options:
            if option.startswith("--") and _long_match(word, (option,)):
                return True
            if len(option) == 2 and word.startswith("-") and not word.startswith("--") and option[1] in word:
                return True
    return False


def check_outputs(
    program: str,
    rule: OutputRule,
    arguments: Sequence[str],
    trusted: frozenset[int] = frozenset(),
    pinned: bool = False,
) -> None:
    """Refuse a file the program would write, unless a pattern spells the words out.

    An output option is allowed when the pattern spells the option out (``"sort -o /srv/out/*
    ..."``); output operands when the command matched a pattern without ``...`` (the pattern
    says where the operand goes: ``"tee /srv/log/*.log"``).
    """
    if rule is OUTPUT_RULES["magick"] and arguments and arguments[0] in _MAGICK_READERS:
        return  # magick identify FILE: the IM7 spelling of a reader
    reading = _read(rule, arguments)
    harmless = rule.harmless
    for position, value in reading.written:
        if position not in trusted and value not in harmless:
            refuse(
                f"argument {arguments[position]!r} of {program!r} writes the file {value!r}; a "
                f"bare-listed {program} writes only standard output ({', '.join(sorted(harmless))}), "
                "so pin the output with a pattern"
            )
    information = bool(arguments) and all(word in _INFORMATION for word in arguments)
    # Under a pattern without "..." (pinned) the administrator chose what split or unzip writes.
    untrusted = any(position not in trusted for position in range(len(arguments))) or not arguments
    if rule.always and not reading.modes and not information and not pinned and untrusted:
        allowed = f" (only {', '.join(rule.modes)} write nothing)" if rule.modes else ""
        refuse(f"{program!r} writes files of its own{allowed}; pin the command with a pattern")
    if (
        reading.modes
        or information
        or (pinned and not rule.command_first)
        or (rule.when and not _present(rule.when, arguments))
    ):
        return
    operands = reading.operands
    if rule.operands == "all":
        chosen = operands
    elif rule.operands == "after-first":
        chosen = operands[1:]
    elif rule.operands == "last":
        chosen = operands[-1:] if len(operands) > 1 else operands
    elif rule.operands == "first":
        chosen = operands[:1]
    elif rule.operands == "last-word":
        chosen = [len(arguments) - 1] if len(arguments) > 1 else []
    else:
        chosen = []
    for position in chosen:
        word = arguments[position]
        if (
            position in trusted
            or word in harmless
            or (rule is OUTPUT_RULES["magick"] and _MAGICK_STDOUT.match(word))
        ):
            continue
        refuse(
            f"argument {word!r} of {program!r} is a file it writes or changes (or a command that "
            f"does); a bare-listed {program} may not write files, so pin the command with a pattern"
        )


# Names the table maps to the magick family that write no output operand.
_MAGICK_READERS = frozenset({"identify", "display", "animate", "import", "conjure"})


def output_rule(names: set[str]) -> OutputRule | None:
    """The output rule for a program known under ``names``, if any."""
    if names & _MAGICK_READERS and not names & {"convert", "composite", "montage", "compare", "stream"}:
        names = names - {"magick"}
    for name in sorted(names):
        family = OUTPUT_FAMILIES.get(name, name)
        if family in OUTPUT_RULES:
            return OUTPUT_RULES[family]
    return None


# tar's modes: c r u A and --delete write the archive, x writes the members (unless -O).
_TAR_VALUE_LETTERS = "bCfFgHIKLNTVX"
_TAR_LONG = {
    "--create": "c", "--append": "r", "--update": "u", "--catenate": "A", "--concatenate": "A",
    "--delete": "D", "--extract": "x", "--get": "x", "--list": "t", "--diff": "d", "--compare": "d",
    "--to-stdout": "O", "--file": "f",
}  # fmt: skip


def check_tar_outputs(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """A bare-listed tar lists, compares, extracts to standard output (``-O``) or creates an
    archive on standard output (``-cf -``); anything that writes a file needs a pattern.

    Under a pattern without ``...`` the modes the pattern spells out are the administrator's;
    a mode in a word a wildcard matched (``"tar * /srv/a.tar"`` given ``xf``: old-style
    letters have no dash) is judged as for a bare entry.
    """
    modes: set[str] = set()
    untrusted_modes: set[str] = set()
    archives: list[str] = []
    position = 0
    while position < len(arguments):
        word = arguments[position]
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if word == "--":
            break
        if position == 0 and word and not word.startswith("-"):
            # old style: "tar cvf a.tar dir", each value letter takes the next word in turn
            values = iter(arguments[1:])
            for letter in word:
                modes.add(letter)
                if position not in trusted:
                    untrusted_modes.add(letter)
                if letter in _TAR_VALUE_LETTERS:
                    value = next(values, "")
                    position += 1
                    if letter == "f":
                        archives.append(value)
        elif word.startswith("--"):
            option = _long_match(word, tuple(_TAR_LONG))
            if option:
                modes.add(_TAR_LONG[option])
                if position not in trusted:
                    untrusted_modes.add(_TAR_LONG[option])
                if option == "--file":
                    archives.append(word.partition("=")[2] if "=" in word else following)
                    position += 0 if "=" in word else 1
        elif word.startswith("-") and word != "-":
            letters, value = _short_letters(word, _TAR_VALUE_LETTERS)
            modes.update(letters)
            if position not in trusted:
                untrusted_modes.update(letters)
            if value == "\0next":
                value = following
                position += 1
            if letters.endswith("f"):
                archives.append(value)
        position += 1
    effective = untrusted_modes if pinned else modes
    if "x" in effective and "O" not in modes:
        refuse(
            f"{program!r} extracts the archive's members as files; add -O (--to-stdout) to get them "
            "as output, or pin the command with a pattern"
        )
    if effective & set("cruAD"):
        written = [archive for archive in archives if archive not in _WITH_DASH]
        if written or not archives:
            refuse(
                f"{program!r} writes the archive {written[0] if written else '(the default one)'!r}; "
                "a bare-listed tar may create an archive only on standard output (-f -), so pin "
                "the command with a pattern"
            )
