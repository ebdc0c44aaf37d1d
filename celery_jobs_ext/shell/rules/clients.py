"""redis-cli: listed bare, it runs read-only commands only (an allow list).

Round 5 found the old deny list (``CONFIG``, ``MODULE``, ``SAVE`` ...) let ``FLUSHALL``,
``SWAPDB``, ``CLIENT KILL``, ``RESTORE``, ``EVAL``, ``FCALL`` through: any command that changes
data, runs server-side code or acts on other clients needs a pattern that spells it (``"redis-cli
-n 3 HINCRBY jobs:counts * 1"``). Named specially (and refused through a wildcard, as every
command outside the list): ``CONFIG SET dir`` plus
``SAVE`` writes a file wherever the server can write, ``MODULE LOAD`` loads a library,
``REPLICAOF`` copies a chosen server's data; ``--rdb`` writes a dump file on the worker. The
command is the first word that is neither an option nor an option's value; commands are
case-insensitive.
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
# What a bare-listed redis-cli may run: commands that only read, and for the commands with
# subcommands, the subcommands that only read (None: every subcommand reads).
READ_ONLY_REDIS_COMMANDS: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(
        (
            "get", "mget", "exists", "ttl", "pttl", "expiretime", "pexpiretime", "type", "strlen",
            "getrange", "getbit", "bitcount", "bitpos", "llen", "lrange", "lindex", "lpos", "hget",
            "hmget", "hgetall", "hkeys", "hvals", "hlen", "hexists", "hstrlen", "scard", "smembers",
            "sismember", "smismember", "zcard", "zrange", "zrangebyscore", "zrevrange",
            "zrevrangebyscore", "zrangebylex", "zscore", "zmscore", "zrank", "zrevrank", "zcount",
            "zlexcount", "xlen", "xrange", "xrevrange", "xinfo", "pfcount", "geopos", "geodist",
            "info", "ping", "dbsize", "time", "echo", "scan", "hscan", "sscan", "zscan", "keys",
            "pubsub", "lastsave", "role",
        ),
        None,
    ),
    "memory": frozenset({"usage", "stats", "doctor", "help"}),
    "client": frozenset({"list", "info", "getname", "id", "help"}),
    "slowlog": frozenset({"get", "len", "help"}),
    "latency": frozenset({"latest", "history", "doctor", "graph", "help"}),
    "command": frozenset({"count", "docs", "info", "list", "getkeys", "help"}),
}  # fmt: skip
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
        if literal:
            return  # a command the pattern spells: the administrator chose it
        _check_redis_command(program, arguments[position:], trusted, position)
        return


def _check_redis_command(program: str, command: Sequence[str], trusted: frozenset[int], start: int) -> None:
    name = command[0].lower()
    if name in REFUSED_REDIS_COMMANDS:
        refuse(
            f"the Redis command {command[0]!r} can write files on the server's host, load code "
            "into the server or copy another server's data"
        )
    if name not in READ_ONLY_REDIS_COMMANDS:
        refuse(
            f"the Redis command {command[0]!r} is not one that only reads: a bare-listed "
            f"{program!r} runs read-only commands (GET, HGETALL, SCAN, INFO ...: docs/security.md); "
            'pin a command that changes data in a pattern ("redis-cli -n 3 HINCRBY jobs:counts * 1")'
        )
    subcommands = READ_ONLY_REDIS_COMMANDS[name]
    if subcommands is None:
        return
    if len(command) < 2 or (command[1].lower() not in subcommands and start + 1 not in trusted):
        refuse(
            f"the Redis command {' '.join(command[:2])!r} is not one that only reads: "
            f"{command[0].upper()} allows {', '.join(sorted(sub.upper() for sub in subcommands))} "
            "when listed bare; pin others in a pattern"
        )


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
