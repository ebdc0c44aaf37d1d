"""docker and podman listed by bare name: subcommands by an allow list.

docker is a front end to a service that runs as root: ``docker run``/``exec``/``build`` run
code, ``docker cp``/``save -o``/``export -o`` write files, and its global options point it at
another host (``-H``, ``--host``, ``--context``, ``--config``). A bare-listed one may only
read state; anything else needs an argument pattern that spells it out
(``"docker compose -f /srv/app/compose.yml up -d"``). systemctl and the other systemd tools
are in :mod:`.systemd`, ip and nmcli in :mod:`.network`.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery_jobs_ext.shell.rules.launchers import check_launcher
from celery_jobs_ext.shell.syntax import refuse

SAFE_DOCKER_SUBCOMMANDS = frozenset(
    {"ps", "logs", "images", "inspect", "version", "info", "stats", "top", "port", "history", "diff"}
)
_SAFE_DOCKER_MANAGEMENT = frozenset({"image", "container", "network", "volume", "system", "context"})
_SAFE_DOCKER_ACTIONS = frozenset({"ls", "list", "inspect", "df", "history", "show"})
_DOCKER_WRITING_OPTIONS = ("-o", "--output")
_INFORMATION = frozenset({"--version", "-v", "--help", "-h"})


def check_docker(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse global options and any subcommand outside the read-only allow list."""
    check_launcher(program, arguments, trusted, pinned)
    if not arguments or 0 in trusted:
        return  # a pattern spells the subcommand out: the administrator chose it
    if len(arguments) == 1 and arguments[0] in _INFORMATION:
        return  # docker --version, --help: print and exit
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
