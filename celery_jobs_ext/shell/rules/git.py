"""git: configuration on the command line, refused subcommands and options that run programs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.syntax import refuse

_GIT_OPTIONS_WITH_VALUES = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
     "--attr-source"}
)  # fmt: skip
_GIT_REFUSED_SUBCOMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "config": "writes settings (core.sshCommand, core.pager, core.fsmonitor, aliases) "
        "that make later git commands run programs",
        "filter-branch": "runs the shell snippets given as its arguments",
        "shell": "runs the commands given with -c",
        "remote-ext": "runs the command given as its argument",
        "remote-fd": "is a transport helper, not a command to run directly",
        "hook": "runs repository hooks",
        "send-email": "runs programs given by --sendmail-cmd, --to-cmd and --cc-cmd",
        "daemon": "starts a long-running server",
        "instaweb": "starts a web server and a browser",
        "web--browse": "starts a browser",
    }
)
_GIT_REFUSED_ACTIONS: Mapping[str, str] = MappingProxyType({"bisect": "run", "submodule": "foreach"})
_GIT_SUBCOMMAND_OPTIONS: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "clone": (("-u", "-c", "--config", "--template"), "bjo"),
        "init": (("--template",), ""),
        "ls-remote": (("-u",), ""),
        "rebase": (("-x",), "CsX"),
        "difftool": (("-x",), "t"),
        "grep": (("-O",), "efABCm"),
    }
)


def check_git(program: str, arguments: Sequence[str], pinned: bool = False) -> None:
    for argument in arguments:
        if "ext::" in argument or argument.startswith("fd::"):
            refuse(
                f"argument {argument!r} of {program!r} names a remote helper URL that runs a "
                "command (ext::, fd::)"
            )
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("-") or argument == "--":
            break
        if argument.startswith(("-c", "--config-env")):
            refuse(
                f"argument {argument!r} of {program!r} sets git configuration (such as "
                "core.sshCommand, core.pager or core.fsmonitor) that runs programs"
            )
        index += 2 if argument in _GIT_OPTIONS_WITH_VALUES else 1
    if index >= len(arguments) or arguments[index] == "--":
        return
    subcommand = arguments[index]
    rest = arguments[index + 1 :]
    if subcommand in _GIT_REFUSED_SUBCOMMANDS:
        refuse(f"'git {subcommand}' {_GIT_REFUSED_SUBCOMMANDS[subcommand]}")
    action = _GIT_REFUSED_ACTIONS.get(subcommand)
    if action and action in rest:
        refuse(f"'git {subcommand} {action}' runs the command given in its arguments")
    entries, value_letters = _GIT_SUBCOMMAND_OPTIONS.get(subcommand, ((), ""))
    for entry in entries:
        for argument in rest:
            if argument_matches(entry, argument, value_letters, frozenset()):
                refuse(
                    f"argument {argument!r} of 'git {subcommand}' matches {entry!r}, which "
                    "makes git run another program or install hooks"
                )
