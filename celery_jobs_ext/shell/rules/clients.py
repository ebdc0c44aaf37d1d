"""redis-cli: server commands that write files on the server's host or load code into it.

``CONFIG SET dir`` plus ``SAVE`` writes a file of partly chosen content wherever the server
can write, ``MODULE LOAD`` loads a library into the server, ``REPLICAOF`` makes it copy a
chosen server's data; ``--rdb`` writes a dump file on the worker. The command is the first
word that is neither an option nor an option's value; commands are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

REFUSED_REDIS_COMMANDS = frozenset(
    {
        "config", "module", "slaveof", "replicaof", "debug", "save", "bgsave", "bgrewriteaof",
        "shutdown", "failover", "acl", "migrate", "sync", "psync", "cluster", "monitor",
    }
)  # fmt: skip
# redis-cli's options, from its --help (7.0 to 8.0). redis-cli compares them exactly (no
# abbreviations, no "--opt=value"), so anything not named here is refused: an unknown option
# would shift where the command starts. Options that take a value, then those that take none.
_VALUE_OPTIONS = frozenset(
    {
        "-h", "-p", "-s", "-a", "-u", "-r", "-i", "-n", "-d", "-D", "-t", "-X", "--user", "--pass",
        "--cacert", "--cacertdir", "--cert", "--key", "--tls-ciphers", "--tls-ciphersuites",
        "--sni", "--pattern", "--quoted-pattern", "--count", "--memkeys-samples",
        "--intrinsic-latency", "--lru-test", "--keystats-samples", "--top", "--cursor",
        "--show-pushes", "--pipe-timeout",
    }
)  # fmt: skip
_FLAG_OPTIONS = frozenset(
    {
        "-2", "-3", "-4", "-6", "-x", "-c", "-e", "--askpass", "--tls", "--insecure", "--raw",
        "--no-raw", "--quoted-input", "--csv", "--json", "--quoted-json", "--stat", "--latency",
        "--latency-history", "--latency-dist", "--replica", "--bigkeys", "--memkeys",
        "--keystats", "--hotkeys", "--scan", "--verbose", "--no-auth-warning", "--help",
        "--version",
    }
)  # fmt: skip
# --rdb/--functions-rdb write a file, --eval/--ldb run a script file, --pipe sends raw
# protocol from stdin, --cluster runs its own subcommands (call runs any command on every node).
_REFUSED_OPTIONS = frozenset(
    {"--rdb", "--functions-rdb", "--eval", "--ldb", "--ldb-sync-mode", "--pipe", "--cluster"}
)


def check_redis_cli(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse options outside redis-cli's own list, those that write or run files, and
    commands that change the server's files."""
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        literal = position in trusted
        if argument.startswith("-") and argument != "-":
            if literal:
                position += 2 if argument in _VALUE_OPTIONS else 1
                continue
            if argument in _REFUSED_OPTIONS:
                refuse(f"argument {argument!r} of {program!r} writes a file or runs a script or command")
            if argument not in _VALUE_OPTIONS and argument not in _FLAG_OPTIONS:
                refuse(
                    f"argument {argument!r} of {program!r} is not a redis-cli option jobs.shell "
                    "knows (redis-cli matches options exactly; see redis-cli --help)"
                )
            position += 2 if argument in _VALUE_OPTIONS else 1
            continue
        if argument.lower() in REFUSED_REDIS_COMMANDS and not literal:
            refuse(
                f"the Redis command {argument!r} can write files on the server's host, load code "
                "into the server or copy another server's data"
            )
        return


# mysql's client commands: "\!" anywhere in a line, the long names at the start of a statement.
# system runs a shell; source reads a file of commands; tee and pager write or pipe output;
# edit runs an editor; connect reaches another server; ssl_session_data_print writes a file.
_MYSQL_CLIENT_ESCAPE = re.compile(r"\\[!.TPeEr]")
_MYSQL_CLIENT_COMMAND = re.compile(
    r"(?:^|[;\n])\s*(?:system|source|tee|pager|edit|connect|ssl_session_data_print|query_attributes)\b",
    re.IGNORECASE,
)


def check_mysql_statements(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse client commands (``system``, ``\\!``, ``source``, ``tee`` ...) in any argument.

    A pattern ``mysql -e * db`` means any SQL, not the client's own commands, which run a
    shell or write files on the worker. Every argument is read, as the client reads ``-e``
    text and a statement may sit in a glued ``-eSQL``.
    """
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        # The statement may be the whole word, glued to -e, or the value of --execute=.
        if argument.startswith("--"):
            text = argument.partition("=")[2]
        elif argument.startswith("-"):
            text = argument.partition("e")[2]
        else:
            text = argument
        if _MYSQL_CLIENT_ESCAPE.search(argument) or _MYSQL_CLIENT_COMMAND.search(text):
            refuse(
                f"argument {argument!r} of {program!r} uses a mysql client command (system, \\!, "
                "source, tee, pager, edit, connect ...), which runs a shell, reads or writes files "
                "on the worker or reaches another server"
            )


def check_tar_remote_archive(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a remote archive name (``host:file``): tar runs rsh/ssh with that host as an argument."""
    if "--force-local" in arguments:
        return
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        name, _, value = argument.partition("=")
        if argument.startswith("--"):
            if not (len(name) > 3 and "--file".startswith(name)):
                continue
            argument = value
        if ":" in argument.split("/", 1)[0]:
            refuse(
                f"argument {argument!r} of {program!r} looks like a remote archive (host:file), "
                "for which tar starts rsh or ssh with a host the message chooses; add "
                "--force-local if it is a local file name"
            )


# SQL that runs programs, loads libraries or reads and writes files where the database runs
# (or, for LOAD DATA LOCAL, reads a file of the worker's and sends it to the server); and
# psql's backslash meta-commands (\! runs a shell, \copy and \o write local files, \i reads).
_SQL_REFUSED = re.compile(
    r"\\|\b(?:PROGRAM|OUTFILE|DUMPFILE|INFILE|LOAD_FILE|SONAME|LO_EXPORT|LO_IMPORT|LO_FROM_BYTEA"
    r"|PG_READ_FILE|PG_READ_BINARY_FILE|PG_LS_DIR|PG_STAT_FILE|PG_FILE_WRITE|PG_FILE_RENAME"
    r"|PG_FILE_UNLINK|DBLINK\w*|SYS_EXEC|SYS_EVAL|PLUGIN)\b",
    re.IGNORECASE,
)
# Dynamic SQL and server-side code: a statement built from a string (DO blocks, EXECUTE,
# PREPARE ... FROM @var, query_to_xml('...')) hides every keyword above, and functions,
# extensions, ALTER SYSTEM (archive_command) and SET GLOBAL general_log_file run code or write
# files on the database host.
_SQL_STATEMENTS = re.compile(
    r"(?:\A|;)\s*(?:DO|PREPARE|EXECUTE|LOAD|CALL|HANDLER)\b|\bALTER\s+SYSTEM\b"
    r"|\bSET\s+(?:GLOBAL|PERSIST|PERSIST_ONLY|@@)|\bQUERY_TO_XML\w*|\bCURSOR_TO_XML\w*"
    r"|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:FUNCTION|PROCEDURE|TRIGGER"
    r"|RULE|EXTENSION|LANGUAGE|EVENT|AGGREGATE|OPERATOR|CAST|SERVER|TRANSFORM|FOREIGN|PUBLICATION"
    r"|SUBSCRIPTION)\b",
    re.IGNORECASE,
)
_SQL_COMMENTS = re.compile(r"/\*.*?(?:\*/|\Z)|--[^\n]*|#[^\n]*", re.DOTALL)
_SQL_COPY = re.compile(r"\bCOPY\b", re.IGNORECASE)
_SQL_COPY_STANDARD = re.compile(r"\b(?:TO|FROM)\s+(?:STDOUT|STDIN)\b", re.IGNORECASE)


def check_sql_statements(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse SQL and meta-commands that run programs or move files, in any argument.

    A bare-listed psql or mysql runs no SQL given in the command (``-c``, ``-e`` are refused
    by the table: any SQL can change the server's data); a pattern such as ``"psql -d shop -c
    *"`` allows SQL, and the word its wildcard matched is read here: no ``\\`` meta-command,
    no ``COPY ... PROGRAM`` or ``COPY`` to a server file, no ``INTO OUTFILE``, ``LOAD DATA
    [LOCAL] INFILE``, ``LOAD_FILE()``, ``lo_export()``, ``pg_read_file()``, ``SONAME`` ... The
    words are matched anywhere, string literals included (stricter than the SQL grammar).
    """
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        # Read as written and with comments as spaces (CREATE/**/FUNCTION): stripping alone
        # would also strip a "--" inside a string literal and what follows it.
        found = None
        for text in (argument, _SQL_COMMENTS.sub(" ", argument)):
            found = found or _SQL_REFUSED.search(text) or _SQL_STATEMENTS.search(text)
            if found is None and _SQL_COPY.search(text) and not _SQL_COPY_STANDARD.search(text):
                found = _SQL_COPY.search(text)
        if found:
            refuse(
                f"argument {argument!r} of {program!r} uses {found.group(0)!r}: SQL or a meta-command "
                "that runs a program, loads a library or reads or writes files on the worker or the "
                "database host"
            )
