"""Compilers, preprocessors, assemblers and linkers listed by bare name: options by an allow list.

A compiler driver runs other programs and loads code on request: ``-wrapper prog,args`` runs
``prog`` in front of every sub-process, ``-fplugin=x.so`` and ``-fpass-plugin=`` load
libraries, ``-B dir`` and ``-specs=file`` choose which programs it runs, ``-Wl,-plugin,x.so``,
``-Xlinker``, ``-Wa,`` and ``-Wp,`` pass anything to the linker, assembler or preprocessor,
``@file`` reads more options from a file, ``-fmodule-mapper=|cmd`` starts a program. And it
writes files: ``a.out`` by default, ``-o FILE``, ``-c`` and ``-S`` objects, ``-MD``/``-MF``
dependency files, ``-save-temps``, ``-fdump-*``, ``-aux-info``, ``-fdiagnostics-format=
sarif-file``, ``-time=FILE``. GCC accepts each of these in several spellings (one or two
dashes, joined or separate values, abbreviated ``--long`` options), so a deny list cannot
keep up.

So a bare-listed compiler runs only in the modes that write nothing but standard output:
information (``--version``, ``-v``, ``-dumpmachine``, ``-print-*`` ...), ``-fsyntax-only``,
``-E`` (preprocess to standard output) and ``-M``/``-MM`` (dependencies to standard output),
with options from :func:`_allowed_option` (include directories, macros, warnings, language
standard, optimisation and a short list of ``-f`` language switches). ``-o`` may only name
``-``, ``/dev/stdout`` or ``/dev/null``. Anything else (``-c``, ``-o app``, linking) needs an
argument pattern that spells it out. Linkers and assemblers (``ld``, ``ld.gold``, ``lld``,
``as`` ...) under a bare name only print their version or help. Compilers are recognised by
the shape of their name, so versioned and cross names count (``gcc-12``,
``x86_64-linux-gnu-gcc-12``, ``clang++-15``, ``arm-none-eabi-ld.bfd``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from celery_jobs_ext.shell.syntax import refuse

_TARGET = r"(?:[A-Za-z0-9_]+(?:-[A-Za-z0-9_.]+)*-)?"
_VERSION = r"(?:-?[0-9]+(?:\.[0-9]+)*)?"
_DRIVER_NAMES = re.compile(
    _TARGET + r"(?:gcc|g\+\+|c\+\+|cc|cpp|c89|c99|c89-gcc|c99-gcc|clang(?:\+\+|-cpp|-cl)?|tcc|icc|icpc"
    r"|icx|icpx|gfortran|gccgo|gdc|gnat|zig-cc|cc1|cc1plus|cc1obj)" + _VERSION + r"\Z"
)
_PREPROCESSOR_NAMES = re.compile(_TARGET + r"cpp" + _VERSION + r"\Z")
_LINKER_NAMES = re.compile(
    _TARGET + r"(?:ld(?:\.bfd|\.gold|\.lld|\.mold)?|lld|ld64\.lld|wasm-ld|mold|collect2|lto-wrapper"
    r"|as|gas|lto1)" + _VERSION + r"\Z"
)

# Information: print and exit (no input is read, nothing is written).
_INFORMATION = re.compile(
    r"--?(?:version|help(?:=[A-Za-z0-9_,^-]*)?|target-help|verbose|print-[a-z0-9-]+(?:=.*)?"
    r"|dumpversion|dumpfullversion|dumpmachine|dumpspecs)\Z|-v\Z|-###\Z"
)
# Modes that write only standard output.
_MODES = frozenset({"-fsyntax-only", "-E", "-M", "-MM"})
# Options whose value is the next word when not glued; the value only names something read
# (a directory, a header, a macro, a language, a make target).
_SEPARATE_VALUES = frozenset(
    {"-I", "-iquote", "-isystem", "-idirafter", "-include", "-imacros", "-D", "-U", "-x", "-MT", "-MQ",
     "--param"}
)  # fmt: skip
_GLUED_VALUES = re.compile(r"(?:-I|-iquote|-isystem|-idirafter|-D|-U|-x|-MT|-MQ|--param=).+\Z", re.DOTALL)
_FLAGS = re.compile(
    r"-(?:w|pedantic|pedantic-errors|ansi|pipe|pthread|traditional|traditional-cpp|trigraphs|undef"
    r"|nostdinc|nostdinc\+\+|P|C|CC|H|MG|MP|std=[A-Za-z0-9+]+|O[0-3sgz]?|Ofast|g[a-z0-9-]*"
    r"|m(?!llvm)[A-Za-z0-9=._+-]+|W[A-Za-z0-9+_-]*(?:=[A-Za-z0-9_+-]*)?)\Z"
)
# -f switches that change how the language is read or diagnostics are printed. Not -fdump-*,
# -fplugin*, -fprofile-*, -fmodule*, -fcallgraph-info, -fstack-usage, -fsave-optimization-record,
# -fopt-info, -fdiagnostics-format=*-file, -flto, ... (they write files or load code).
_F_SWITCHES = re.compile(
    r"-f(?:no-)?(?:syntax-only|permissive|pic|PIC|pie|PIE|openmp|openmp-simd|openacc|exceptions|rtti"
    r"|signed-char|unsigned-char|short-enums|ms-extensions|strict-aliasing|strict-overflow|wrapv|trapv"
    r"|common|builtin|asm|gnu89-inline|freestanding|hosted|char8_t|concepts|coroutines"
    r"|extended-identifiers|dollars-in-identifiers|show-column|working-directory|directives-only"
    r"|preprocessed|gnu-keywords|operator-names|access-control|threadsafe-statics|elide-constructors"
    r"|implicit-templates|omit-frame-pointer|inline|inline-functions|color-diagnostics|caret-diagnostics"
    r"|diagnostics-color(?:=(?:always|never|auto))?|diagnostics-show-[a-z-]+|diagnostics-urls(?:=[a-z]+)?"
    r"|diagnostics-format=(?:text|json|json-stderr|sarif-stderr)|diagnostics-parseable-fixits"
    r"|message-length=[0-9]+|max-errors=[0-9]+|tabstop=[0-9]+|track-macro-expansion(?:=[0-2])?"
    r"|input-charset=[A-Za-z0-9_.:-]+|exec-charset=[A-Za-z0-9_.:-]+|wide-exec-charset=[A-Za-z0-9_.:-]+"
    r"|visibility=[a-z]+|stack-protector(?:-all|-strong|-explicit)?|sanitize=[a-z,-]+"
    r"|cf-protection(?:=[a-z]+)?|template-depth=[0-9]+|constexpr-depth=[0-9]+|abi-version=[0-9]+"
    r"|constexpr-loop-limit=[0-9]+|constexpr-ops-limit=[0-9]+|ms-compatibility|delayed-template-parsing"
    r"|blocks)\Z"
)
_PREPROCESSOR_DUMPS = re.compile(r"-d[MDNIU]\Z")  # with -E only: without it, -dM is an RTL dump file
HARMLESS_OUTPUTS = frozenset({"-", "/dev/stdout", "/dev/null"})
_LINKER_INFORMATION = frozenset({"--version", "-v", "-V", "--help", "-version"})


def is_compiler(names: Iterable[str]) -> bool:
    """Whether one of ``names`` has the shape of a compiler driver or preprocessor name."""
    return any(_DRIVER_NAMES.match(name) for name in names)


def is_linker(names: Iterable[str]) -> bool:
    """Whether one of ``names`` has the shape of a linker or assembler name."""
    return any(_LINKER_NAMES.match(name) for name in names)


def _allowed_option(argument: str, preprocessing: bool) -> bool:
    return bool(
        argument in _MODES
        or _INFORMATION.match(argument)
        or _FLAGS.match(argument)
        or _F_SWITCHES.match(argument)
        or _GLUED_VALUES.match(argument)
        or argument in _SEPARATE_VALUES
        or (preprocessing and _PREPROCESSOR_DUMPS.match(argument))
    )


def check_compiler(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse any option outside the allow list, ``@file``, a real output file, and compiling
    or linking (which writes ``a.out`` or objects) unless a pattern spells the words out.

    Under a pattern without ``...`` (``pinned``) the administrator chose the mode: the words a
    wildcard matched still go through the option allow list, but compiling is what was meant.
    """
    # cpp preprocesses to standard output by itself; its second operand is an output file.
    standalone = bool(_PREPROCESSOR_NAMES.match(program))
    mode = standalone or any(word in _MODES for word in arguments)
    preprocessing = standalone or any(word in ("-E", "-M", "-MM") for word in arguments)
    # The value of a separate option (-I dir, -x c) counts as an operand below: stricter
    # than tracking which word a value is, and the modes that matter have no such value.
    output_values: set[int] = set()
    operands = []
    for position, word in enumerate(arguments):
        if position in trusted or position in output_values:
            continue
        if word.startswith("@"):
            refuse(
                f"argument {word!r} of {program!r} is a response file: the compiler reads more "
                "options from it, which jobs.shell cannot check"
            )
        if word.startswith("-o"):
            value = word[2:] or (arguments[position + 1] if position + 1 < len(arguments) else "")
            if value not in HARMLESS_OUTPUTS:
                refuse(
                    f"argument {word!r} of {program!r} writes the output file {value!r}; a bare-listed "
                    "compiler writes only standard output (-o -, -o /dev/null), so pin it with a pattern"
                )
            if not word[2:]:
                output_values.add(position + 1)
            continue
        if word.startswith("-") and word != "-":
            if not _allowed_option(word, preprocessing):
                refuse(
                    f"argument {word!r} of {program!r} is not an option jobs.shell allows for a "
                    "bare-listed compiler: compilers run programs and load plugins through options "
                    "(-wrapper, -fplugin=, -B, -specs=, -Wl,, -Xlinker) and write files (-c, -S, "
                    "-MD, -MF, -save-temps, -fdump-*); only checking (-fsyntax-only), preprocessing "
                    "to standard output (-E, -M) and information (--version, -print-*) are allowed, "
                    "so pin anything else with a pattern"
                )
            continue
        operands.append(word)
    if standalone and len(operands) > 1 and operands[1] not in HARMLESS_OUTPUTS and not pinned:
        refuse(
            f"argument {operands[1]!r} of {program!r} is cpp's output file, which it writes; a "
            "bare-listed cpp writes only standard output, so pin it with a pattern"
        )
    if operands and not mode and not pinned:
        refuse(
            f"{program!r} with the input {operands[0]!r} compiles and links, which writes a.out or "
            "object files; a bare-listed compiler only checks (-fsyntax-only) or preprocesses to "
            "standard output (-E, -M), so pin the build with a pattern"
        )


def check_linker(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """A bare-listed linker or assembler may only print its version or help.

    Under a pattern without ``...`` (``pinned``) a word a wildcard matched may be an input
    file; options still have to be spelled out by the pattern.
    """
    for position, word in enumerate(arguments):
        if pinned and not word.startswith(("-", "@")):
            continue
        if position not in trusted and word not in _LINKER_INFORMATION:
            refuse(
                f"argument {word!r} of {program!r}: a linker or assembler writes its output file "
                "(a.out by default) and loads plugins (-plugin); a bare-listed one may only print "
                "its version or help, so pin anything else with a pattern"
            )


# binutils: readers load a BFD plugin (--plugin x.so) and read options from @file; ar, ranlib,
# strip, objcopy and elfedit write the files they name (ar x extracts into the directory).
_BINUTILS_NAMES = re.compile(
    _TARGET + r"(?:gcc-|llvm-)?(ar|nm|ranlib|objcopy|strip|objdump|readelf|size|strings|addr2line"
    r"|elfedit|c\+\+filt|dwp)" + _VERSION + r"\Z"
)
_BINUTILS_WRITERS = frozenset({"ranlib", "objcopy", "strip", "elfedit", "dwp"})
_AR_WRITING_OPERATIONS = frozenset("dmqrsx")


def binutils_tool(names: Iterable[str]) -> str | None:
    """The binutils tool ``names`` stand for (``x86_64-linux-gnu-gcc-ar-12`` is ``ar``), if any."""
    for name in names:
        match = _BINUTILS_NAMES.match(name)
        if match:
            return match.group(1)
    return None


def check_binutils(
    program: str, tool: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse ``--plugin`` and ``@file`` everywhere, and writing unless a pattern spells it out."""
    key_seen = False
    for position, word in enumerate(arguments):
        if position in trusted:
            key_seen = key_seen or (tool == "ar" and not word.startswith("--"))
            continue
        name = word.split("=", 1)[0]
        if word.startswith("@") or (len(name) > 3 and "--plugin".startswith(name)):
            refuse(
                f"argument {word!r} of {program!r} loads a plugin library or reads options from a "
                "file (@file)"
            )
        if tool in _BINUTILS_WRITERS and word not in _LINKER_INFORMATION:
            refuse(
                f"argument {word!r} of {program!r}: {tool} writes the files it is given; a "
                "bare-listed one may only print its version or help, so pin it with a pattern"
            )
        if tool == "ar" and not key_seen and not word.startswith("--"):
            key_seen = True
            letters = set(word.lstrip("-"))
            if letters & _AR_WRITING_OPERATIONS or not letters & set("tp"):
                refuse(
                    f"argument {word!r} of {program!r}: a bare-listed ar only lists (t) or prints "
                    "(p) members; r, q, d, m, s and x write archives or extract files"
                )
        elif tool == "ar" and word.startswith("--") and word not in _LINKER_INFORMATION:
            refuse(f"argument {word!r} of {program!r} writes files or loads a plugin (--output, --plugin)")
