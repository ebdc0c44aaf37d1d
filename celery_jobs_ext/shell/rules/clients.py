"""redis-cli: server commands that write files on the server's host or load code into it.

``CONFIG SET dir`` plus ``SAVE`` writes a file of partly chosen content wherever the server
can write, ``MODULE LOAD`` loads a library into the server, ``REPLICAOF`` makes it copy a
chosen server's data; ``--rdb`` writes a dump file on the worker. The command is the first
word that is neither an option nor an option's value; commands are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.syntax import refuse

REFUSED_REDIS_COMMANDS = frozenset(
    {
        "config", "module", "slaveof", "replicaof", "debug", "save", "bgsave", "bgrewriteaof",
        "shutdown", "failover", "acl", "migrate", "sync", "psync", "cluster", "monitor",
    }
)  # fmt: skip
_VALUE_OPTIONS = frozenset(
    {
        "-h", "-p", "-s", "-a", "-u", "-r", "-i", "-n", "-d", "-D", "-t", "--user", "--pass",
        "--cacert", "--cacertdir", "--cert", "--key", "--tls-ciphers", "--tls-ciphersuites",
        "--sni", "--pattern", "--quoted-pattern", "--count", "--memkeys-samples",
        "--intrinsic-latency", "--lru-test", "--replica", "--keystats-samples", "--top",
    }
)  # fmt: skip
_REFUSED_OPTIONS = frozenset({"--rdb", "--functions-rdb", "--eval", "--ldb", "--ldb-sync-mode", "--pipe"})


def check_redis_cli(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse options that write or run files and commands that change the server's files."""
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        literal = position in trusted
        if argument.startswith("-"):
            name = argument.split("=", 1)[0]
            if name in _REFUSED_OPTIONS and not literal:
                refuse(f"argument {argument!r} of {program!r} writes a file or runs a script")
            position += 2 if name in _VALUE_OPTIONS and "=" not in argument else 1
            continue
        if argument.lower() in REFUSED_REDIS_COMMANDS and not literal:
            refuse(
                f"the Redis command {argument!r} can write files on the server's host, load code "
                "into the server or copy another server's data"
            )
        return
