"""sqlite3: dot-commands by an allow list, and SQL read as SQLite's tokenizer reads it; zip -TT.

The sqlite3 shell runs an argument starting with ``.`` as a dot-command, and accepts a prefix
of a command's name (``.sh`` is ``.shell``), so dot-commands pass only when their name is one
of :data:`SAFE_DOT_COMMANDS`, spelled out. Any other argument is SQL: it is tokenised with
SQLite's rules (``'...'`` strings, ``"..."``, ``[...]`` and backquoted identifiers, ``--``
and ``/* */`` comments), so a name inside a string literal is text, and a function name
written with a comment or quotes before its parenthesis is still that function.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from urllib.parse import unquote

from celery_jobs_ext.shell.rules.table import REFUSAL_REASONS
from celery_jobs_ext.shell.syntax import refuse

SAFE_DOT_COMMANDS = frozenset(
    {
        "tables", "schema", "fullschema", "indexes", "indices", "databases", "dbinfo", "headers",
        "header", "mode", "width", "nullvalue", "separator", "show", "help", "timer", "changes",
        "stats", "eqp", "print", "bail", "echo", "dump", "lint", "quit", "exit", "explain",
        "limits", "sha3sum", "version",
    }
)  # fmt: skip
"""Dot-commands that only read the database or change how results are printed.

Not ``.parameter`` (``.parameter set`` evaluates its value as SQL, unchecked) nor
``.selftest`` (runs the SQL stored in a ``selftest`` table the same command can create).
"""

SAFE_FUNCTIONS = frozenset(
    {
        # core scalar functions
        "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull", "iif",
        "instr", "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min",
        "nullif", "octet_length", "printf", "quote", "random", "randomblob", "replace", "round",
        "rtrim", "sign", "soundex", "substr", "substring", "trim", "typeof", "unhex", "unicode",
        "unlikely", "upper", "zeroblob", "changes", "total_changes", "last_insert_rowid",
        "sqlite_version", "sha3",
        # aggregates and window functions
        "avg", "count", "group_concat", "string_agg", "sum", "total", "row_number", "rank",
        "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
        "last_value", "nth_value",
        # date and time
        "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
        # math
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
        "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
        "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
        # JSON
        "json", "jsonb", "json_array", "jsonb_array", "json_array_length", "json_error_position",
        "json_extract", "jsonb_extract", "json_insert", "jsonb_insert", "json_object",
        "jsonb_object", "json_patch", "jsonb_patch", "json_pretty", "json_remove", "jsonb_remove",
        "json_replace", "jsonb_replace", "json_set", "jsonb_set", "json_type", "json_valid",
        "json_quote", "json_group_array", "jsonb_group_array", "json_group_object",
        "jsonb_group_object", "json_each", "json_tree",
        # read-only table-valued functions
        "generate_series", "pragma_table_info", "pragma_table_xinfo", "pragma_index_list",
        "pragma_index_info", "pragma_index_xinfo", "pragma_foreign_key_list",
        "pragma_database_list", "pragma_table_list",
    }
)  # fmt: skip
"""SQL functions a command may call: they compute values and touch nothing outside the database.

An allow list, because the sqlite3 shell and its extensions add functions that run SQL from a
string (``sha3_query``), run programs (``edit``) or read and write files (``writefile``,
``fsdir``), and new versions add more.
"""

# Words after which "name(" is not a call: a table, index or column list, or a keyword whose
# syntax takes a parenthesis (VALUES (...), IN (...), CHECK (...)), or a column type.
_NOT_A_CALL_AFTER = frozenset(
    {"table", "into", "on", "references", "view", "index", "exists", "trigger", "with", "recursive"}
)
_PARENTHESIS_KEYWORDS = frozenset(
    {
        "values", "in", "exists", "as", "over", "filter", "using", "check", "key", "unique",
        "default", "cast", "and", "or", "not", "select", "where", "from", "join", "when", "then",
        "else", "case", "like", "glob", "between", "is", "by", "having", "limit", "offset", "set",
        "returning", "with", "union", "all", "intersect", "except", "distinct", "window",
        "partition", "collate", "escape", "match", "regexp", "do", "generated", "always", "stored",
        "virtual", "primary", "foreign", "constraint", "on", "group", "order", "recursive", "to",
    }
)  # fmt: skip
_COLUMN_TYPES = frozenset(
    {"varchar", "char", "character", "nchar", "nvarchar", "varying", "decimal", "numeric", "float",
     "double", "int", "integer", "text", "real", "blob", "native"}
)  # fmt: skip

# Functions and statements that run programs, load code or write files other than the database.
_REFUSED_WORDS = frozenset(
    {
        "writefile", "edit", "load_extension", "fts3_tokenizer", "zipfile", "sqlar_compress",
        "sqlar_uncompress", "attach", "detach", "readfile", "lsdir", "fsdir",
    }
)  # fmt: skip
_OPTION_VALUES = frozenset(
    {"-separator", "-newline", "-nullvalue", "-vfs", "-mmap", "-maxsize", "-heap", "-escape"}
)  # fmt: skip
_OPTION_TWO_VALUES = frozenset({"-lookaside", "-pagecache"})
_REFUSED_OPTIONS = (
    "-cmd", "-init", "-A", "-archive", "-interactive", "-deserialize", "-zip", "-append",
)  # fmt: skip


def _read_only_uri(uri: str) -> bool:
    """Whether a database URI is opened read-only (every ``mode`` is ``ro``, or ``immutable=1``)."""
    query = uri.partition("?")[2].partition("#")[0]
    # SQLite decodes %HH in parameter names and values (m%6Fde=rwc is mode=rwc)
    parameters = [tuple(unquote(part) for part in pair.partition("=")[::2]) for pair in query.split("&")]
    modes = {value for name, value in parameters if name == "mode"}
    return modes == {"ro"} or (not modes - {"ro"} and ("immutable", "1") in parameters)


def _check_database(program: str, database: str) -> None:
    """Refuse a database operand that creates a file: a URI not opened read-only, a missing file.

    sqlite3 creates a database file it is given that does not exist (``sqlite3 /tmp/x/new.db
    .dump`` leaves one behind) and a URI's ``mode=rwc`` says so outright. A relative name is
    judged where the command runs, which validation does not know: the sandbox keeps the
    working directory unwritable unless it is listed in ``jobs_shell_writable_paths``.
    """
    if database.lower().startswith("file:"):
        if not _read_only_uri(database):
            refuse(
                f"argument {database!r} of {program!r} is a database URI not opened read-only; "
                "a bare-listed sqlite3 opens URIs with mode=ro or immutable=1 only (it would "
                "create or write the file); pin other databases with a pattern"
            )
    elif database.startswith("/") and not os.path.exists(database) and database != ":memory:":
        refuse(
            f"argument {database!r} of {program!r} names no existing database, which sqlite3 "
            "would create; a bare-listed sqlite3 opens existing databases only (pin a new one "
            "with a pattern)"
        )


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class _SqlRefused(Exception):
    """Internal: the SQL cannot be tokenised."""


def _sql_tokens(sql: str) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, text)``: ``word`` (identifier, lower case), ``string``, ``(`` or ``other``."""
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char.isspace():
            index += 1
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            index = length if end < 0 else end + 1
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            index = length if end < 0 else end + 2  # SQLite accepts an unterminated comment
        elif char in "'\"`[":
            closing = "]" if char == "[" else char
            end = index + 1
            text: list[str] = []
            while True:
                found = sql.find(closing, end)
                if found < 0:
                    raise _SqlRefused(f"an unterminated {char} quote")
                text.append(sql[end:found])
                if closing != "]" and sql.startswith(closing * 2, found):
                    text.append(closing)
                    end = found + 2
                    continue
                index = found + 1
                break
            yield ("string" if char == "'" else "word", "".join(text).lower())
        elif char == "(":
            index += 1
            yield ("(", "(")
        else:
            word = _WORD.match(sql, index)
            if word:
                index = word.end()
                yield ("word", word.group().lower())
            else:
                index += 1
                yield ("other", char)


def _before(tokens: list[tuple[str, str]], position: int) -> str:
    """The word before ``tokens[position]``, skipping a ``schema.`` qualifier."""
    index = position - 1
    if index >= 1 and tokens[index] == ("other", "."):
        index -= 2
    return tokens[index][1] if index >= 0 else ""


def _sql_problem(sql: str) -> str | None:
    try:
        tokens = list(_sql_tokens(sql))
    except _SqlRefused as error:
        return f"has {error}"
    for position, (kind, text) in enumerate(tokens):
        following = tokens[position + 1] if position + 1 < len(tokens) else ("", "")
        if kind == "word" and text in _REFUSED_WORDS:
            return f"uses {text!r}, which runs a program, loads code or reads or writes other files"
        if kind in ("word", "string") and following[0] == "(" and text not in SAFE_FUNCTIONS:
            before = _before(tokens, position)
            if kind == "string" or not (
                before in _NOT_A_CALL_AFTER or text in _PARENTHESIS_KEYWORDS or text in _COLUMN_TYPES
            ):
                return (
                    f"calls {text!r}, which is not one of the SQL functions jobs.shell allows "
                    "(others run SQL from a string, run programs or read and write files)"
                )
        if kind == "word" and text == "vacuum" and any(t == ("word", "into") for t in tokens[position + 1 :]):
            return "uses VACUUM INTO, which writes another file"
    return None


def _check_command_text(program: str, argument: str) -> None:
    stripped = argument.lstrip()
    if stripped.startswith("."):
        name = stripped[1:].split(None, 1)[0] if stripped[1:].strip() else ""
        if name.lower() not in SAFE_DOT_COMMANDS:
            refuse(
                f"argument {argument!r} of {program!r} is the dot-command {'.' + name!r}; only "
                f"{', '.join('.' + safe for safe in sorted(SAFE_DOT_COMMANDS))} are allowed, "
                "spelled out"
            )
        return
    problem = _sql_problem(argument)
    if problem:
        refuse(f"the SQL {argument!r} given to {program!r} {problem}")


def check_sqlite(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse options that run commands or read scripts, unsafe dot-commands and file-touching SQL.

    Words a pattern spells out are the administrator's; a wildcard word is checked as the
    command text it is, also as the value of a pinned ``-cmd``.
    """
    expect = ""  # what the next word is: "", "value" (skipped) or "command"
    database_seen = False
    for position, argument in enumerate(arguments):
        literal = position in trusted
        if expect:
            if expect == "command" and not literal:
                _check_command_text(program, argument)
            expect = "value" if expect == "values" else ""
            continue
        if argument.startswith("-"):
            option = argument[1:] if argument.startswith("--") else argument
            if not literal and (option.startswith("-A") or option.split("=", 1)[0] in _REFUSED_OPTIONS):
                refuse(
                    f"argument {argument!r} of {program!r} runs dot-commands, reads a script, "
                    "opens an archive or writes a database onto the end of a file; pass SQL as an "
                    "argument instead"
                )
            expect = "value" if option in _OPTION_VALUES or option == "-init" else ""
            expect = "command" if option == "-cmd" else expect
            expect = "values" if option in _OPTION_TWO_VALUES else expect
            continue
        if not database_seen:
            database_seen = True  # the database file name, not SQL
            if not literal:
                _check_database(program, argument)
            continue
        if not literal:
            _check_command_text(program, argument)


def check_zip(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """zip's own option parser also takes -TT's value glued (``-TTcmd``) or inside a cluster."""
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("--") and "TT" in argument:
            refuse(f"argument {argument!r} of {program!r} uses -TT, which {REFUSAL_REASONS['zip']}")
