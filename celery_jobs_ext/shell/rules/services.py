"""docker and systemctl listed by bare name: subcommands by an allow list.

Both are front ends to a service that runs as root: ``docker run``/``exec``/``build`` run
code, ``docker cp``/``save -o``/``export -o`` write files, ``systemctl link /path``,
``enable /path``, ``set-environment``, ``set-property``, ``edit`` install or change what
systemd runs, and their global options point them at another host (``-H``, ``--host``,
``--context``, ``--config``). A bare-listed one may only read state (and systemctl start,
stop or restart the units that already exist, named without a path); anything else needs an
argument pattern that spells it out (``"docker compose -f /srv/app/compose.yml up -d"``).
journalctl's writing options are in the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.rules.launchers import check_launcher
from celery_jobs_ext.shell.rules.options import argument_matches
from celery_jobs_ext.shell.syntax import refuse

SAFE_DOCKER_SUBCOMMANDS = frozenset(
    {"ps", "logs", "images", "inspect", "version", "info", "stats", "top", "port", "history", "diff"}
)
_SAFE_DOCKER_MANAGEMENT = frozenset({"image", "container", "network", "volume", "system", "context"})
_SAFE_DOCKER_ACTIONS = frozenset({"ls", "list", "inspect", "df", "history", "show"})
_DOCKER_WRITING_OPTIONS = ("-o", "--output")

SAFE_SYSTEMCTL_SUBCOMMANDS = frozenset(
    {
        "status", "show", "cat", "is-active", "is-enabled", "is-failed", "is-system-running",
        "list-units", "list-unit-files", "list-timers", "list-sockets", "list-dependencies",
        "list-jobs", "list-automounts", "list-paths", "start", "stop", "restart", "reload",
        "try-restart", "reload-or-restart", "try-reload-or-restart", "reset-failed", "enable",
        "disable",
    }
)  # fmt: skip
_SYSTEMCTL_REMOTE_OPTIONS = ("-H", "--host", "-M", "--machine", "--root", "--image")
# systemctl reads long options with getopt_long, so "--roo=" is "--root=": matched with the
# shared abbreviation-aware matcher. These real options are not abbreviations of the above.
_SYSTEMCTL_LONG_EXCEPTIONS = frozenset({"--image-policy"})


def check_docker(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse global options and any subcommand outside the read-only allow list."""
    check_launcher(program, arguments, trusted, pinned)
    if not arguments or 0 in trusted:
        return  # a pattern spells the subcommand out: the administrator chose it
    subcommand = arguments[0]
    action = arguments[1] if len(arguments) > 1 else ""
    if subcommand.startswith("-"):
        refuse(
            f"argument {subcommand!r} of {program!r} is a global option (--config, -H, --context "
            "point docker at other configuration or hosts); pin the command with a pattern"
        )
    if not (
        subcommand in SAFE_DOCKER_SUBCOMMANDS
        or (subcommand in _SAFE_DOCKER_MANAGEMENT and action in _SAFE_DOCKER_ACTIONS)
    ):
        refuse(
            f"'docker {' '.join(arguments[:2])}' is not a read-only docker command jobs.shell runs "
            f"for a bare-listed docker ({', '.join(sorted(SAFE_DOCKER_SUBCOMMANDS))}, and ls/inspect "
            "of images, containers, networks, volumes); run, exec, build, cp, save ... need a pattern"
        )
    for position, argument in enumerate(arguments[1:], start=1):
        name = argument.split("=", 1)[0]
        if position not in trusted and (name in _DOCKER_WRITING_OPTIONS or name.startswith("-o")):
            refuse(f"argument {argument!r} of {program!r} writes a file")


def check_systemctl(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse other hosts and roots, subcommands outside the allow list, and unit files by path."""
    subcommand = ""
    for position, argument in enumerate(arguments):
        if position in trusted:
            continue
        short = argument.startswith("-") and not argument.startswith("--")
        if any(
            argument_matches(option, argument, "", _SYSTEMCTL_LONG_EXCEPTIONS)
            for option in _SYSTEMCTL_REMOTE_OPTIONS
            if option.startswith("--")
        ) or (short and ("H" in argument or "M" in argument)):
            refuse(
                f"argument {argument!r} of {program!r} points systemctl at another host, "
                "container or root directory"
            )
        if argument.startswith("-"):
            continue
        if not subcommand:
            subcommand = argument
            if subcommand not in SAFE_SYSTEMCTL_SUBCOMMANDS:
                refuse(
                    f"'systemctl {subcommand}' is not a systemctl command jobs.shell runs for a "
                    f"bare-listed systemctl ({', '.join(sorted(SAFE_SYSTEMCTL_SUBCOMMANDS))}); "
                    "link, edit, set-environment, set-property ... need a pattern"
                )
        elif "/" in argument:
            refuse(
                f"argument {argument!r} of 'systemctl {subcommand}' is a path; a unit given by "
                "path is installed from a file the message chose"
            )


def check_ip(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse ``exec`` (``ip netns exec``, ``ip vrf exec``) in any spelling iproute2 accepts.

    iproute2 matches a subcommand by any prefix of its name (``matches()``), so ``exe``,
    ``ex`` and ``e`` are ``exec`` after ``netns`` and ``vrf``, which run a command. Any word
    that is a prefix of ``exec`` is refused wherever it stands: cheaper than tracking which
    object a word belongs to, and no read-only ``ip`` command needs one.
    """
    for position, argument in enumerate(arguments):
        if position not in trusted and argument and "exec".startswith(argument.lower()):
            refuse(
                f"argument {argument!r} of {program!r} is 'exec' (iproute2 accepts any prefix of "
                "a subcommand), which runs a command in a network namespace or VRF"
            )
