"""What the worker says at start-up about entries that let a message run code.

A bare program name allows any arguments; for a program that can run code through its
arguments or its configuration, the per-program rules are only defence in depth, so the
worker names such entries, says how they run code, and suggests pinning the arguments with a
pattern. Imports nothing from Celery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.patterns import ALLOWED_SETTING, ANY_PROGRAM, parse_entries
from celery_jobs_ext.shell.rules.table import names_of

_COMPILES = "compiles and links (bare: only checks, preprocesses and prints; a build needs a pattern)"
CODE_RUNNING_PROGRAMS: Mapping[str, str] = MappingProxyType(
    {
        "sh": "runs any script file it is given",
        "python": "runs any script or module it is given",
        "perl": "runs any script it is given",
        "ruby": "runs any script it is given",
        "node": "runs any script it is given",
        "php": "runs any script it is given",
        "lua": "runs any script it is given",
        "tclsh": "runs any script it is given",
        "vim": "runs editor commands from files, modelines and its configuration",
        "emacs": "runs Lisp from files and its configuration",
        "make": "runs the recipes of the makefile in its working directory",
        "ssh": "runs commands on other hosts and reads ~/.ssh/config",
        "scp": "reads ~/.ssh/config, which can name commands",
        "sftp": "reads ~/.ssh/config, which can name commands",
        "rsync": "can be told to run a remote shell or write anywhere the worker can",
        "sqlite3": "runs dot-commands and SQL that can write files",
        "git": "runs hooks, aliases and configured commands of the repository it works in",
        "mysql": "runs client commands and can write files",
        "psql": "runs meta-commands (\\! runs a shell) and can write files",
        "awk": "is a programming language",
        "sed": "edits and writes files with the right script",
        "tar": "writes files anywhere the worker can and can call programs",
        "zip": "can call programs and write archives anywhere",
        "find": "can run programs and delete files",
        "curl": "writes files with the right options",
        "wget": "writes files with the right options",
        "less": "runs commands from its prompt and key files",
        "man": "runs a pager and preprocessors",
        "nc": "can run programs and write files",
        "tcpdump": "can run programs and write capture files",
        "dd": "writes to any file or device",
        "sort": "writes files and runs a compression program",
        "nmap": "runs scripts",
        "docker": "controls a root service (bare: read-only; run, exec, build, cp need a pattern)",
        "podman": "controls containers (bare: read-only subcommands; run, exec, build, cp need a pattern)",
        "kubectl": "runs commands in any pod it can reach (exec, run)",
        "pip": "runs the build code of any package it installs",
        "npm": "runs package scripts",
        "npx": "downloads and runs packages",
        "gcc": _COMPILES,
        "cc": _COMPILES,
        "clang": _COMPILES,
        "cmake": "runs CMake scripts (-P) and any build it configures",
        "java": "runs any class or jar it is given",
        "systemctl": "controls every installed service (bare: read-only verbs only)",
        "openssl": "loads engines and providers and writes key and certificate files",
        "gpg": "runs helper programs and writes files",
        "cp": "writes any file the worker can write",
        "mv": "replaces any file the worker can write",
        "tee": "writes any file the worker can write",
        "sponge": "writes any file the worker can write",
        "ln": "creates links anywhere the worker can write",
        "kill": "signals any process of the worker's user, the worker included",
        "pkill": "signals any process of the worker's user, the worker included",
        "uniq": "writes its second operand as a file",
        "xxd": "reads any file the worker can read (its output operand is refused)",
        "touch": "creates or updates any file the worker can write",
        "rm": "deletes any file the worker can delete",
        "unzip": "writes files anywhere the worker can write",
        "tex": "runs TeX code given as an argument, which reads and writes files",
        "pandoc": "runs filters and writes files",
        "magick": "runs delegate programs for some formats and writes files",
        "redis-cli": "reads any key of any server it reaches (bare: read-only commands; pin writes)",
        "duckdb": "runs SQL that reads and writes files and loads extensions",
        "ansible": "runs any module, shell included, on the hosts it reaches",
        "ansible-playbook": "runs playbooks and the programs their variables name",
        "julia": "runs any script it is given",
        "R": "runs any script it is given",
        "Rscript": "runs any script it is given",
        "gnuplot": "runs scripts, which can run commands",
        "mongosh": "runs JavaScript files, which can run programs",
        "apt-get": "installs packages, whose scripts run as root",
        "dpkg": "shows any package's files; a pattern that installs runs package scripts as root",
    }
)
"""Programs (by family) that can run code or write files through their arguments, and how."""

_SUGGESTIONS: Mapping[str, str] = MappingProxyType(
    {
        "git": '"git -C /srv/repo status"',
        "du": '"du -sh /srv/*"',
        "grep": '"grep -E * /var/log/app/*.log"',
        "sqlite3": '"sqlite3 -readonly /srv/app.db *"',
        "curl": '"curl -fsS https://status.example.com/*"',
        "python": '"python3 /srv/tools/report.py *"',
    }
)


def startup_warnings(allowed: Sequence[str]) -> list[str]:
    """The warnings a worker logs once at start-up about ``jobs_allowed_shell_commands``."""
    warnings: list[str] = []
    for entry in parse_entries(allowed):
        if entry.program == ANY_PROGRAM:
            warnings.append(
                f"{ALLOWED_SETTING} contains '*': any program on the search path may run with "
                "any arguments (wrappers such as env and timeout are still refused). Anyone who "
                "can publish to the broker chooses the program; list programs or argument "
                "patterns instead."
            )
            continue
        if entry.words is not None:
            continue
        for name in sorted(names_of([entry.program])):
            how = CODE_RUNNING_PROGRAMS.get(name)
            if how is None:
                continue
            example = _SUGGESTIONS.get(name, f'"{entry.program} <the exact arguments you run>"')
            warnings.append(
                f"{ALLOWED_SETTING} lists {entry.program!r} by bare name: it {how}, and a message "
                f"chooses all its arguments (the per-program rules are defence in depth). Pin the "
                f"arguments with a pattern such as {example}."
            )
            break
    return warnings
