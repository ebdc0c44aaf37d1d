"""git: subcommands by an allow list, no configuration on the command line, no command-running URLs.

git runs an alias (``git x`` where ``alias.x = !cmd``), a plumbing spelling
(``submodule--helper foreach``) or an autocorrected typo as readily as a porcelain command,
so only the subcommands in :data:`SAFE_GIT_SUBCOMMANDS` pass; everything else, aliases
included, is refused. A remote given as ``name::address`` runs the helper
``git-remote-name``: only the network transports pass (also as an option's value,
``--remote=ext::...``).

Directories: a repository's configuration runs programs (``core.fsmonitor``,
``core.sshCommand``), and ``git clone`` writes a repository the message chose, possibly with a
committed directory laid out as a bare repository. So a bare-listed git works only in its
working directory (the message's ``cwd``, checked against ``jobs_shell_allowed_cwd``):
``-C``, ``--git-dir`` and ``--work-tree`` pass only when a pattern spells them out, and
``clone``/``init`` may not name an absolute destination or one with ``..`` (nor
``--separate-git-dir``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.syntax import refuse

SAFE_GIT_SUBCOMMANDS = frozenset(
    {
        "add", "annotate", "archive", "blame", "branch", "cat-file", "check-attr", "check-ignore",
        "check-mailmap", "checkout", "cherry", "cherry-pick", "clean", "clone", "commit",
        "count-objects", "describe", "diff", "diff-files", "diff-index", "diff-tree", "fetch",
        "for-each-ref", "fsck", "gc", "grep", "init", "log", "ls-files", "ls-remote", "ls-tree",
        "merge", "merge-base", "mv", "name-rev", "notes", "pull", "push", "range-diff", "rebase",
        "reflog", "remote", "reset", "restore", "rev-list", "rev-parse", "revert", "rm",
        "shortlog", "show", "show-branch", "show-ref", "stash", "status", "submodule", "switch",
        "symbolic-ref", "tag", "var", "verify-commit", "verify-tag", "version", "whatchanged",
        "worktree",
    }
)  # fmt: skip
"""git subcommands that do their own job; aliases and the rest (config, help, bisect,
difftool, filter-branch, send-email, submodule--helper ...) are refused."""

_SAFE_SUBMODULE_ACTIONS = frozenset(
    {"status", "init", "update", "sync", "summary", "absorbgitdirs", "deinit"}
)
_SAFE_WORKTREE_ACTIONS = frozenset({"list", "prune"})
_NETWORK_HELPERS = frozenset({"http", "https", "ftp", "ftps"})
_REMOTE_HELPER = re.compile(r"([A-Za-z0-9][A-Za-z0-9+.-]*)::")
_GIT_OPTIONS_WITH_VALUES = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
     "--attr-source", "--list-cmds"}
)  # fmt: skip
_DIRECTORY_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree", "--bare"})
_GIT_SUBCOMMAND_OPTIONS: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "clone": (("-u", "-c", "--config", "--template", "--separate-git-dir"), "bjo"),
        "init": (("--template", "--separate-git-dir"), ""),
        "ls-remote": (("-u",), ""),
        "rebase": (("-x",), "CsX"),
        "grep": (("-O",), "efABCm"),
        "archive": (("-o", "--output"), ""),
    }
)


# Options of clone and init whose value is the next word (when not given with "=").
_CLONE_VALUE_OPTIONS = frozenset(
    {"-o", "--origin", "-b", "--branch", "-u", "--upload-pack", "--reference", "--reference-if-able",
     "--depth", "--shallow-since", "--shallow-exclude", "-j", "--jobs", "--filter", "--server-option",
     "--bundle-uri", "--ref-format", "--template", "-c", "--config", "--separate-git-dir",
     "--object-format", "--revision"}
)  # fmt: skip


def _operands(words: Sequence[str], start: int, value_options: frozenset[str]) -> list[tuple[int, str]]:
    """The (position, word) operands among ``words``: not options, not an option's value."""
    found: list[tuple[int, str]] = []
    skip = False
    for position, word in enumerate(words, start=start):
        if skip:
            skip = False
        elif word == "--":
            found.extend(
                (after, rest) for after, rest in enumerate(words[position - start + 1 :], start=position + 1)
            )
            break
        elif word.startswith("-") and word != "-":
            skip = word in value_options
        else:
            found.append((position, word))
    return found


def check_git(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse -c, unknown subcommands, command-running remotes and options that run programs."""
    if program.startswith("git-") and len(program) > 4:
        # /usr/lib/git-core/git-config is 'git config': judge it as the subcommand it runs.
        arguments = [program[4:], *arguments]
        trusted = frozenset(position + 1 for position in trusted)
        program = "git"
    for position, argument in enumerate(arguments):
        if argument == "--help" and position not in trusted:
            refuse(f"argument '--help' of {program!r} runs 'git help', which starts a pager or a browser")
        if position in trusted:
            continue
        helper = _REMOTE_HELPER.match(argument) or _REMOTE_HELPER.match(argument.partition("=")[2])
        if (helper and helper.group(1).lower() not in _NETWORK_HELPERS) or argument.startswith("fd::"):
            refuse(
                f"argument {argument!r} of {program!r} names the remote helper "
                f"{argument.split('::', 1)[0]!r}, which can run a command; only http(s) and ftp(s) "
                "helpers pass"
            )
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("-") or argument == "--":
            break
        if (index not in trusted and argument.startswith(("-c", "--config-env"))) or (
            argument.startswith("--conf") and "--config-env".startswith(argument.split("=")[0])
        ):
            refuse(
                f"argument {argument!r} of {program!r} sets git configuration (such as "
                "core.sshCommand, core.pager or core.fsmonitor) that runs programs"
            )
        name = argument.split("=", 1)[0]
        if index not in trusted and (
            name in _DIRECTORY_OPTIONS or (argument.startswith("-C") and not argument.startswith("-c"))
        ):
            refuse(
                f"argument {argument!r} of {program!r} points git at another repository, whose "
                "configuration can run programs (core.fsmonitor, core.sshCommand); set the "
                "message's cwd (checked against jobs_shell_allowed_cwd) or pin the directory "
                "with a pattern such as 'git -C /srv/repo status'"
            )
        index += 2 if argument in _GIT_OPTIONS_WITH_VALUES else 1
    if index >= len(arguments) or arguments[index] == "--":
        return
    subcommand = arguments[index]
    rest = arguments[index + 1 :]
    if index in trusted:
        return  # a pattern spells the subcommand out: the administrator chose it
    if subcommand not in SAFE_GIT_SUBCOMMANDS:
        refuse(
            f"'git {subcommand}' is not a git subcommand jobs.shell runs (aliases and subcommands "
            "that run programs, such as config, help, bisect, difftool, filter-branch or "
            "submodule--helper, are refused); pin the exact command with a pattern if it is meant"
        )
    actions = rest and [word for word in rest if not word.startswith("-")][:1]
    if subcommand == "submodule" and actions and actions[0] not in _SAFE_SUBMODULE_ACTIONS:
        refuse(f"'git submodule {actions[0]}' is refused (foreach runs a command)")
    if subcommand == "worktree" and (not actions or actions[0] not in _SAFE_WORKTREE_ACTIONS):
        refuse("'git worktree' may only list or prune (add writes a checkout anywhere)")
    if subcommand in ("clone", "init"):
        operands = _operands(rest, index + 1, _CLONE_VALUE_OPTIONS)
        # clone's first operand is the repository it reads (a local path may be absolute);
        # the destination is the second, or for init the first
        for position, word in operands[1:] if subcommand == "clone" else operands:
            if position in trusted or "://" in word:
                continue
            if word.startswith("/") or ".." in word.split("/"):
                refuse(
                    f"argument {word!r} of 'git {subcommand}' writes a repository outside the "
                    "working directory; clone into the message's cwd (jobs_shell_allowed_cwd) "
                    "or pin the destination with a pattern"
                )
    entries, value_letters = _GIT_SUBCOMMAND_OPTIONS.get(subcommand, ((), ""))
    for entry in entries:
        for argument in rest:
            if argument_matches(entry, argument, value_letters, frozenset()):
                refuse(
                    f"argument {argument!r} of 'git {subcommand}' matches {entry!r}, which "
                    "makes git run another program, install hooks or write a file"
                )
