"""Per-program argument rules: defence in depth behind the allowed list.

The allowed list (and its argument patterns) is the boundary; these rules refuse the options
and script constructs through which a listed program would run another program, load code or
write files. Imports nothing from Celery.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.awk import check_awk
from celery_jobs_ext.shell.rules.clients import (
    check_mysql_statements,
    check_redis_cli,
    check_tar_remote_archive,
)
from celery_jobs_ext.shell.rules.downloads import check_curl, check_wget
from celery_jobs_ext.shell.rules.git import check_git
from celery_jobs_ext.shell.rules.images import check_magick
from celery_jobs_ext.shell.rules.interpreters import (
    check_java,
    check_node,
    check_perl,
    check_python,
    check_ruby,
)
from celery_jobs_ext.shell.rules.launchers import LAUNCHING_SUBCOMMANDS, check_launcher
from celery_jobs_ext.shell.rules.make import check_make
from celery_jobs_ext.shell.rules.openssl import check_openssl
from celery_jobs_ext.shell.rules.options import check_denied_arguments
from celery_jobs_ext.shell.rules.paths import check_installed_scripts, check_process_files
from celery_jobs_ext.shell.rules.sed import check_sed
from celery_jobs_ext.shell.rules.services import check_docker, check_ip, check_systemctl
from celery_jobs_ext.shell.rules.sqlite import check_sqlite, check_zip
from celery_jobs_ext.shell.rules.ssh import check_ssh
from celery_jobs_ext.shell.rules.table import DENIED_ARGUMENTS, names_of
from celery_jobs_ext.shell.rules.xxd import check_xxd

__all__ = ["DENIED_ARGUMENTS", "check_arguments", "names_of"]

_ARGUMENT_CHECKERS: Mapping[str, Callable[[str, Sequence[str], frozenset[int], bool], None]] = (
    MappingProxyType(
        {
            "zip": check_zip,
            "sed": check_sed,
            "awk": check_awk,
            "git": check_git,
            "ssh": check_ssh,
            "scp": check_ssh,
            "sftp": check_ssh,
            "sqlite3": check_sqlite,
            "curl": check_curl,
            "wget": check_wget,
            "make": check_make,
            "redis-cli": check_redis_cli,
            "magick": check_magick,
            "perl": check_perl,
            "mysql": check_mysql_statements,
            "tar": check_tar_remote_archive,
            "python": check_python,
            "node": check_node,
            "ruby": check_ruby,
            "java": check_java,
            "xxd": check_xxd,
            **dict.fromkeys(LAUNCHING_SUBCOMMANDS, check_launcher),
            # after the launchers: check_docker runs check_launcher too
            "docker": check_docker,
            "podman": check_docker,
            "systemctl": check_systemctl,
            "ip": check_ip,
            "openssl": check_openssl,
        }
    )
)


def check_arguments(
    program: str,
    paths: Iterable[str],
    arguments: Sequence[str],
    configured: Mapping[str, Sequence[str]],
    *,
    trusted: Collection[int] = (),
    pinned: bool = False,
) -> None:
    """Refuse ``arguments`` if a rule of the program (found under any of ``paths``' names) denies them.

    ``trusted`` are the positions of arguments an argument pattern spells out literally: the
    administrator wrote them, so no rule refuses them (a wildcard word still goes through
    every rule). ``pinned`` says the command matched an argument pattern, so what the program
    writes by default (wget's download) was meant.
    """
    names = names_of(paths)
    check_process_files(program, arguments, frozenset(trusted))
    check_installed_scripts(program, names, arguments, frozenset(trusted))
    check_denied_arguments(program, names, arguments, configured, trusted=frozenset(trusted))
    checkers = {_ARGUMENT_CHECKERS[name] for name in names if name in _ARGUMENT_CHECKERS}
    for checker in sorted(checkers, key=lambda function: function.__name__):
        checker(program, arguments, frozenset(trusted), pinned)
