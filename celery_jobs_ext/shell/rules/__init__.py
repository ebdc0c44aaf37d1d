"""Per-program argument rules: defence in depth behind the allowed list.

The allowed list (and its argument patterns) is the boundary; these rules refuse the options
and script constructs through which a listed program would run another program, load code or
write files. Imports nothing from Celery.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.rules.admin import check_read_only, read_only_rule
from celery_jobs_ext.shell.rules.awk import check_awk
from celery_jobs_ext.shell.rules.clients import (
    check_mysql_statements,
    check_redis_cli,
    check_sql_statements,
    check_tar_remote_archive,
)
from celery_jobs_ext.shell.rules.compilers import (
    binutils_tool,
    check_binutils,
    check_compiler,
    check_linker,
    is_compiler,
    is_linker,
)
from celery_jobs_ext.shell.rules.downloads import check_curl, check_wget
from celery_jobs_ext.shell.rules.git import check_git
from celery_jobs_ext.shell.rules.images import check_magick
from celery_jobs_ext.shell.rules.infrastructure import check_ansible, check_cluster_tool
from celery_jobs_ext.shell.rules.interpreters import (
    check_java,
    check_node,
    check_perl,
    check_python,
    check_ruby,
)
from celery_jobs_ext.shell.rules.launchers import LAUNCHING_SUBCOMMANDS, check_launcher
from celery_jobs_ext.shell.rules.make import check_make
from celery_jobs_ext.shell.rules.network import check_ip, check_iw, check_nmcli, check_tc
from celery_jobs_ext.shell.rules.openssl import check_openssl
from celery_jobs_ext.shell.rules.options import check_denied_arguments
from celery_jobs_ext.shell.rules.outputs import check_outputs, check_tar_outputs, output_rule
from celery_jobs_ext.shell.rules.packages import check_maven, check_package_manager, manager_of
from celery_jobs_ext.shell.rules.paths import check_installed_scripts, check_process_files
from celery_jobs_ext.shell.rules.readers import check_ps, check_recursive_root, recursive_family
from celery_jobs_ext.shell.rules.sed import check_sed
from celery_jobs_ext.shell.rules.services import check_docker
from celery_jobs_ext.shell.rules.sqlite import check_sqlite, check_zip
from celery_jobs_ext.shell.rules.ssh import check_scp_destination, check_ssh
from celery_jobs_ext.shell.rules.system import (
    check_date,
    check_hostname,
    check_kill,
    check_renice,
    check_sysctl,
)
from celery_jobs_ext.shell.rules.systemd import TOOLS, check_systemd_tool
from celery_jobs_ext.shell.rules.table import DENIED_ARGUMENTS, names_of
from celery_jobs_ext.shell.rules.uploads import check_curl_uploads, check_jq, check_rsync, check_wget_uploads
from celery_jobs_ext.shell.rules.xxd import check_xxd

__all__ = ["DENIED_ARGUMENTS", "check_arguments", "names_of"]

Checker = Callable[[str, Sequence[str], frozenset[int], bool], None]

_ARGUMENT_CHECKERS: Mapping[str, tuple[Checker, ...]] = MappingProxyType(
    {
        "zip": (check_zip,),
        "sed": (check_sed,),
        "awk": (check_awk,),
        "git": (check_git,),
        "ssh": (check_ssh,),
        "scp": (check_ssh, check_scp_destination),
        "sftp": (check_ssh,),
        "sqlite3": (check_sqlite,),
        "curl": (check_curl, check_curl_uploads),
        "wget": (check_wget, check_wget_uploads),
        "make": (check_make,),
        "redis-cli": (check_redis_cli,),
        "magick": (check_magick,),
        "perl": (check_perl,),
        "mysql": (check_mysql_statements, check_sql_statements),
        "psql": (check_sql_statements,),
        "tar": (check_tar_remote_archive, check_tar_outputs),
        "python": (check_python,),
        "node": (check_node,),
        "ruby": (check_ruby,),
        "java": (check_java,),
        "xxd": (check_xxd,),
        **dict.fromkeys(LAUNCHING_SUBCOMMANDS, (check_launcher,)),
        # after the launchers: check_docker runs check_launcher too
        "docker": (check_docker,),
        "podman": (check_docker,),
        "ip": (check_ip,),
        "nmcli": (check_nmcli,),
        "tc": (check_tc,),
        "iw": (check_iw,),
        "openssl": (check_openssl,),
        "jq": (check_jq,),
        "gojq": (check_jq,),
        "jaq": (check_jq,),
        "rsync": (check_rsync,),
        **dict.fromkeys(("kill", "pkill", "killall", "skill"), (check_kill,)),
        **dict.fromkeys(("renice", "snice"), (check_renice,)),
        "sysctl": (check_sysctl,),
        **dict.fromkeys(("hostname", "domainname", "nisdomainname", "ypdomainname"), (check_hostname,)),
        "date": (check_date,),
        "mvn": (check_maven,),
        "ps": (check_ps,),
    }
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
    every rule). ``pinned`` says the command matched an argument pattern without ``...``, so
    what the program writes by default or where the pattern's wildcards point (wget's
    download, tee's operand, a compiler's a.out) was meant.

    Besides the per-name checkers: compilers, linkers and binutils are found by the shape of
    their names (:mod:`.compilers`), and the systemd tools (:mod:`.systemd`), administration
    programs (:mod:`.admin`), package managers (:mod:`.packages`) and programs that write the
    files their options or operands name (:mod:`.outputs`) by their tables.
    """
    names = names_of(paths)
    check_process_files(program, arguments, frozenset(trusted))
    check_installed_scripts(program, names, arguments, frozenset(trusted))
    check_denied_arguments(program, names, arguments, configured, trusted=frozenset(trusted))
    checkers = {checker for name in names for checker in _ARGUMENT_CHECKERS.get(name, ())}
    # Compilers, linkers and binutils by the shape of their name (gcc-12, x86_64-linux-gnu-ld).
    if is_compiler(names):
        checkers.add(check_compiler)
    if is_linker(names):
        checkers.add(check_linker)
    for checker in sorted(checkers, key=lambda function: function.__name__):
        checker(program, arguments, frozenset(trusted), pinned)
    for name in sorted(names & TOOLS.keys()):
        check_systemd_tool(program, name, arguments, frozenset(trusted))
    for name in sorted(names):
        if name.startswith("ansible"):
            check_ansible(program, name, arguments, frozenset(trusted))
            break
    for name in sorted(names & {"kubectl", "helm", "terraform"}):
        check_cluster_tool(program, name, arguments, frozenset(trusted))
    read_only = read_only_rule(names)
    if read_only is not None:
        check_read_only(program, read_only, arguments, frozenset(trusted))
    manager = manager_of(names)
    if manager is not None:
        check_package_manager(program, manager, arguments, frozenset(trusted))
    tool = binutils_tool(names)
    if tool:
        check_binutils(program, tool, arguments, frozenset(trusted))
    rule = output_rule(names)
    if rule is not None:
        check_outputs(program, rule, arguments, frozenset(trusted), pinned)
    family = recursive_family(names)
    if family is not None:
        check_recursive_root(program, family, arguments, frozenset(trusted))
