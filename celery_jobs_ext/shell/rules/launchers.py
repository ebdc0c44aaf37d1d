"""Package managers: the subcommands that run a program or a command string named in the message.

``npm exec -c 'cmd'``, ``npm x``, ``pnpm dlx``, ``yarn exec``, ``poetry run prog``, ``uv run prog``,
``conda run prog`` run whatever follows, like ``env``; their stand-alone launchers (``npx``,
``bunx``, ``uvx``, ``pipx`` ...) are in the refused programs. The subcommands that build,
install or run a script the project's own manifest names are left to the allowed list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.syntax import refuse

LAUNCHING_SUBCOMMANDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "npm": frozenset({"exec", "x", "explore", "edit", "create", "init", "innit", "create-app"}),
        "pnpm": frozenset({"exec", "dlx", "create", "x"}),
        "yarn": frozenset({"exec", "dlx", "node", "create"}),
        "bun": frozenset({"exec", "x", "create"}),
        "uv": frozenset({"run", "tool"}),
        "poetry": frozenset({"run", "shell"}),
        "pipenv": frozenset({"run", "shell"}),
        "pdm": frozenset({"run", "exec"}),
        "hatch": frozenset({"run", "shell"}),
        "conda": frozenset({"run"}),
        "mamba": frozenset({"run"}),
        "micromamba": frozenset({"run"}),
        "cargo": frozenset({"run", "exec"}),
        "go": frozenset({"run", "generate", "tool"}),
        "gem": frozenset({"exec"}),
        "bundle": frozenset({"exec"}),
        "bundler": frozenset({"exec"}),
        "dotnet": frozenset({"exec", "run"}),
        # Container engines run any program of any image, with the worker's mounts if asked.
        "docker": frozenset({"run", "exec", "create", "build", "compose", "container", "buildx", "plugin"}),
        "podman": frozenset({"run", "exec", "create", "build", "compose", "container", "play", "kube"}),
        "nerdctl": frozenset({"run", "exec", "create", "build", "compose", "container"}),
    }
)
"""Per package manager, the subcommands that run a program or command named in their arguments."""

# npm's "-c"/"--call" give exec a command string; they are refused wherever they appear.
_COMMAND_STRING_OPTIONS = frozenset({"-c", "--call"})
# npm's own options that are prefixes of "--call" ("--ca" sets the CA certificate).
_CALL_EXCEPTIONS = frozenset({"--ca"})


def check_launcher(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a package manager's subcommand that runs a program or command named by the message."""
    # Called under the name the rule was found by; an unknown spelling gets every family's list.
    launching = LAUNCHING_SUBCOMMANDS.get(program) or frozenset().union(*LAUNCHING_SUBCOMMANDS.values())
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        if argument.lower() in launching:
            refuse(
                f"{program} {argument} runs the program or command named in its arguments, which "
                "would bypass the allowed commands"
            )
        # npm (nopt) takes unambiguous abbreviations too: "--cal=..." is "--call=..."
        if argument.split("=", 1)[0] in _COMMAND_STRING_OPTIONS or argument_matches(
            "--call", argument, "", _CALL_EXCEPTIONS
        ):
            refuse(f"argument {argument!r} of {program!r} gives it a command string to run")
