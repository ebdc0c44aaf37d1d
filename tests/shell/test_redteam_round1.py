"""The first red-team round's hits (against 1526180), each refused by the class that let it in.

Every command here ran a program or wrote a file when the attacker tried it. Validation never
runs anything, so the programs are stand-ins on a temporary search path: no test depends on
what is installed. Beside each hit are the other spellings of its class, and ordinary uses
of the same options that must still pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_environment, run_command, validate_command
from celery_jobs_ext.shell.environment import checked_environment_names
from tests.shell.helpers import make_programs

PROGRAMS = [
    "sqlite3", "make", "perl", "ssh", "scp", "sftp", "mariadb", "mysql", "git", "choom", "npm",
    "npx", "gpg-agent", "wget", "tar", "rsync", "python3", "node", "vim", "openssl", "pnpm", "yarn",
    "poetry", "uv", "pdb3", "bunx", "uvx", "pipx", "uclampset", "systemd-cat", "systemd-inhibit",
    "systemd-socket-activate", "run_erl", "scriptlive", "touch", "cargo", "hyperfine", "daemon",
    "execlineb", "tcpserver", "docker", "podman", "bpftrace", "ruby", "java",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


def refused(allowed: list[str], command: str, search_path: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        validate_command(command, allowed, denied_arguments={}, search_path=search_path)


def allowed(allowed: list[str], command: str, search_path: str) -> None:
    argv = validate_command(command, allowed, denied_arguments={}, search_path=search_path)
    assert os.path.basename(argv[0]) == command.split()[0]


SQLITE_DOT_COMMAND_PREFIXES = [
    "sqlite3 :memory: '.sh touch pwned'",
    "sqlite3 :memory: '.sys touch pwned'",
    "sqlite3 :memory: '.outp pwned' 'select 1'",
    "sqlite3 :memory: '.o pwned' 'select 1'",
    "sqlite3 :memory: '.onc pwned' 'select 1'",
    "sqlite3 :memory: '.bac pwned'",
    "sqlite3 :memory: '.sav pwned'",
    "sqlite3 :memory: '.cl pwned'",
    "sqlite3 :memory: '.ope pwned' 'create table t(a)'",
    "sqlite3 :memory: '.tr pwned' 'select 1'",
]
SQLITE_FUNCTION_SPELLINGS = [
    "sqlite3 :memory: \"select edit/**/('x','touch pwned')\"",
    'sqlite3 :memory: \'select "edit"(1,"touch pwned")\'',
    "sqlite3 :memory: \"select [edit]('x','touch pwned')\"",
    "sqlite3 :memory: \"select writefile/*x*/('pwned','x')\"",
    "sqlite3 :memory: \"select [writefile]('pwned','x')\"",
    "sqlite3 :memory: 'create table t(a); vacuum/**/into \"pwned\"'",
    "sqlite3 :memory: \"create table t(a); vacuum main into 'pwned'\"",
]
SQLITE_THROUGH_SUGGESTED_PATTERN = [
    "sqlite3 -readonly /srv/app.db \"select [edit]('x','touch pwned')\"",
    "sqlite3 -readonly /srv/app.db '.sh touch pwned'",
    "sqlite3 -readonly /srv/app.db '.sys touch pwned'",
    "sqlite3 -readonly /srv/app.db \"select [writefile]('pwned','x')\"",
]
MAKE_COMMAND_LINE_CODE = [
    "make -f /dev/null '.DEFAULT_GOAL=$(shell touch pwned)'",
    "make -f /dev/null 'SHELL=/usr/bin/touch' '.SHELLFLAGS=pwned' 'X:=$(shell y)'",
    "make -f /dev/null SHELL=/bin/sh 'X:=$(shell touch pwned)'",
    "make -f /dev/null SHELL=/bin/sh 'X!=touch pwned'",
    "make -f /dev/null 'X:=$(file >pwned,x)'",
]
SSH_KEYWORD_SPELLINGS = [
    ("ssh", "ssh -o '\"ProxyCommand\" touch pwned' 127.0.0.1"),
    ("ssh", "ssh -o '\"ProxyCommand\"=touch pwned' 127.0.0.1"),
    ("ssh", "ssh -o '=ProxyCommand=touch pwned' 127.0.0.1"),
    ("scp", "scp -o '\"ProxyCommand\" touch pwned' 127.0.0.1:y z"),
    ("sftp", "sftp -o '\"ProxyCommand\" touch pwned' 127.0.0.1"),
    ("ssh -o * host", "ssh -o '\"ProxyCommand\" touch pwned' host"),
]
MYSQL_OPTION_SPELLINGS = [
    ("mariadb", "mariadb --loose-execute='system touch pwned'"),
    ("mysql", "mysql --loose-tee=pwned -h 127.0.0.1"),
    ("mysql", "mysql --init_command='select 1'"),
    ("mysql", "mysql --plugin_dir=/tmp/x --default_auth=evil"),
    ("mysql", "mysql --loose-pager='touch pwned'"),
    ("mysql", "mysql --defaults-extra-file=/tmp/x"),
]
GIT_WRITES_FILES = [
    "git -C /srv/repo log -1 '--format=tformat:[alias]%n%x09x = !touch pwned' --output=/tmp/r/.git/config",
    "git -C /srv/repo show --output=/tmp/pwned HEAD",
    "git -C /srv/repo diff --output=/tmp/pwned",
    "git -C /srv/repo format-patch -o /tmp/pwned --root -1",
    "git -C /srv/repo archive -o /tmp/pwned.tar HEAD",
    "git -C /srv/repo bundle create /tmp/pwned HEAD",
    "git -C /srv/repo fast-export --export-marks=/tmp/pwned HEAD",
    "git -C /srv/repo bugreport -o /tmp/pwned",
]
OUTPUT_FILE_OPTIONS = [
    "wget --save-cookies=/tmp/pwned --keep-session-cookies http://127.0.0.1/",
    "wget --warc-file=/tmp/pwned http://127.0.0.1/",
    "tar -cf /dev/null --index-file=/tmp/pwned -v /etc/hostname",
    "tar -cf /dev/null --volno-file=/tmp/pwned /etc/hostname",
    "tar -cf /dev/null -g /tmp/pwned /etc/hostname",
    "tar -cf /dev/null --listed-inc=/tmp/pwned /etc/hostname",
    "rsync --log-file=/tmp/pwned /etc/hostname /tmp/copy",
    "rsync --write-batch=/tmp/pwned /etc/hostname /tmp/copy",
    "vim -n --startuptime /tmp/pwned /etc/hostname",
    "openssl rand -out /tmp/pwned 4",
    "openssl rand -writerand /tmp/pwned 4",
    "openssl genpkey -algorithm ed25519 -out /tmp/pwned",
    "openssl s_client -keylogfile /tmp/pwned -connect 127.0.0.1:1",
]
# Interpreter options that paste text into the program, import a module or write a file.
INTERPRETER_SIDE_DOORS = [
    "perl '-F/x/);BEGIN{system(q(touch),q(pwned))};split(/x/' /dev/null",
    "perl -naF'/d/);BEGIN{system(q(touch),q(pwned))};(/' /dev/null",
    'perl -lanF"x");system(q(touch),q(pwned));(" /dev/null',
    "perl -F'x');system('touch','pwned');(' /dev/null",
    "python3 -X pycache_prefix=/tmp/pwned /dev/null",
    "python3 -Xpycache_prefix=/tmp/pwned /dev/null",
    "python3 -X perf /dev/null",
    "python3 -X presite=evil /dev/null",
    "python3 -W ignore::tabnanny.X /dev/null",
    "python3 -Wignore::antigravity.X /dev/null",
    "pdb3 -c 'import os' /dev/null",
    "node --cpu-prof --cpu-prof-dir=/tmp/pwned /dev/null",
    "node --cpu-prof /dev/null",
    "node --heap-prof --heap-prof-dir=/tmp/pwned /dev/null",
    "node --trace-events-enabled --trace-event-file-pattern=/tmp/pwned /dev/null",
    "node --snapshot-blob /tmp/pwned --build-snapshot /dev/null",
    "node --prof /dev/null",
    "node --report-on-fatalerror --report-directory=/tmp/pwned /dev/null",
    "node --diagnostic-dir=/tmp/pwned /dev/null",
    "node --redirect-warnings=/tmp/pwned /dev/null",
    "node --tls-keylog=/tmp/pwned /dev/null",
    "node --openssl-config=/tmp/evil.cnf /dev/null",
    "node --perf_basic_prof /dev/null",
    "node --run build",
    "node -prof /dev/null",
    "node -cpu_prof /dev/null",
    "node -trace-events-enabled /dev/null",
    "ruby --yjit --yjit-perf /dev/null",
    "ruby --yjit-log=/tmp/pwned /dev/null",
    "ruby --yjit-trace-exits /dev/null",
    "java '-XX:OnError=touch /tmp/pwned' -jar app.jar",
    "java -XX:OnOutOfMemoryError='touch /tmp/pwned' -jar app.jar",
    "java -javaagent:/tmp/evil.jar -jar app.jar",
    "java -agentpath:/tmp/evil.so -jar app.jar",
    "java -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath=/tmp/pwned -jar app.jar",
    "java -Xlog:gc:file=/tmp/pwned -jar app.jar",
    "java @/tmp/options -jar app.jar",
    "java -XX:Flags=/tmp/hotspotrc -jar app.jar",
]
# Programs whose job is to run another program, refused in every mode.
WRAPPERS = [
    "choom -n 0 -- touch /tmp/pwned",
    "gpg-agent --daemon touch /tmp/pwned",
    "npx -c 'touch /tmp/pwned'",
    "bunx touch /tmp/pwned",
    "uvx touch",
    "pipx run touch",
    "uclampset -m 0 touch /tmp/pwned",
    "systemd-cat touch /tmp/pwned",
    "systemd-inhibit touch /tmp/pwned",
    "systemd-socket-activate -l 127.0.0.1:1 touch /tmp/pwned",
    "run_erl -daemon /tmp/ /tmp/ 'touch /tmp/pwned'",
    "scriptlive -c 'touch /tmp/pwned' /tmp/t",
    "hyperfine 'touch /tmp/pwned'",
    "daemon -- touch /tmp/pwned",
    "execlineb -c 'touch /tmp/pwned'",
    "tcpserver 127.0.0.1 1 touch /tmp/pwned",
    "bpftrace -c 'touch /tmp/pwned' -e 'BEGIN{}'",
]
# Package managers' subcommands that run a program or command string named in the message.
LAUNCHING_SUBCOMMANDS = [
    "npm exec -c 'touch /tmp/pwned'",
    "npm x -- touch /tmp/pwned",
    "npm --call='touch /tmp/pwned' exec",
    "npm explore left-pad -- touch /tmp/pwned",
    "npm init evil",
    "pnpm dlx touch /tmp/pwned",
    "yarn exec touch /tmp/pwned",
    "yarn node -e 1",
    "poetry run touch /tmp/pwned",
    "uv run touch /tmp/pwned",
    "cargo run --bin x",
    "docker run --rm -v /:/host alpine touch /host/tmp/pwned",
    "docker exec app touch /tmp/pwned",
    "podman run alpine touch /tmp/pwned",
]


@pytest.mark.parametrize("command", SQLITE_DOT_COMMAND_PREFIXES + SQLITE_FUNCTION_SPELLINGS)
def test_sqlite3_dot_command_prefixes_and_function_spellings_are_refused(
    command: str, search_path: str
) -> None:
    refused(["sqlite3"], command, search_path)


@pytest.mark.parametrize("command", SQLITE_THROUGH_SUGGESTED_PATTERN)
def test_sqlite3_code_is_refused_through_the_pattern_the_worker_suggests(
    command: str, search_path: str
) -> None:
    refused(["sqlite3 -readonly /srv/app.db *"], command, search_path)


@pytest.mark.parametrize("command", MAKE_COMMAND_LINE_CODE)
def test_make_command_line_assignments_are_refused(command: str, search_path: str) -> None:
    refused(["make"], command, search_path)


def test_make_assignment_is_refused_in_a_pattern_wildcard(search_path: str) -> None:
    refused(["make -C /srv/app *"], "make -C /srv/app '.DEFAULT_GOAL=$(shell touch pwned)'", search_path)


@pytest.mark.parametrize(("entry", "command"), SSH_KEYWORD_SPELLINGS)
def test_ssh_option_keywords_in_quotes_or_after_equals_are_refused(
    entry: str, command: str, search_path: str
) -> None:
    refused([entry], command, search_path)


@pytest.mark.parametrize(("entry", "command"), MYSQL_OPTION_SPELLINGS)
def test_mysql_loose_and_underscore_spellings_are_refused(entry: str, command: str, search_path: str) -> None:
    refused([entry], command, search_path)


@pytest.mark.parametrize("command", GIT_WRITES_FILES)
def test_git_subcommands_writing_chosen_files_are_refused(command: str, search_path: str) -> None:
    refused(["git"], command, search_path)


def test_git_bundle_is_refused_after_a_pattern_rest(search_path: str) -> None:
    refused(["git -C /srv/repo ..."], "git -C /srv/repo bundle create pwned HEAD", search_path)


@pytest.mark.parametrize(
    "arguments",
    ["--file=/tmp/pwned alias.x '!touch pwned'", "--file=/tmp/pwned --edit", "--edit"],
)
def test_git_subcommand_under_its_git_core_name_is_judged_as_that_subcommand(
    arguments: str, tmp_path: Path
) -> None:
    core = make_programs(tmp_path / "git-core", ["git"])
    (core / "git-config").symlink_to("git")
    with pytest.raises(ShellCommandNotAllowed, match="git config"):
        validate_command(f"{core}/git-config {arguments}", ["*"], denied_arguments={}, search_path=str(core))


def test_git_core_name_of_a_safe_subcommand_passes(tmp_path: Path) -> None:
    core = make_programs(tmp_path / "git-core", ["git"])
    (core / "git-status").symlink_to("git")
    argv = validate_command(f"{core}/git-status --short", ["*"], denied_arguments={}, search_path=str(core))
    assert argv == [f"{core}/git-status", "--short"]


@pytest.mark.parametrize("command", OUTPUT_FILE_OPTIONS)
def test_options_that_write_chosen_files_are_refused(command: str, search_path: str) -> None:
    refused([command.split()[0]], command, search_path)


@pytest.mark.parametrize("command", INTERPRETER_SIDE_DOORS)
def test_interpreter_options_that_smuggle_code_or_write_files_are_refused(
    command: str, search_path: str
) -> None:
    refused([command.split()[0]], command, search_path)


@pytest.mark.parametrize(
    "command",
    [
        "perl -F: -lan script.pl /etc/passwd",
        "perl -naF, script.pl",
        "perl -F\\t -lan script.pl f",
        "python3 -X dev -X utf8 -X importtime script.py",
        "python3 -X int_max_str_digits=0 script.py",
        "python3 -W ignore::DeprecationWarning script.py",
        "python3 -Werror script.py",
        "node --max-old-space-size=4096 --enable-source-maps --no-warnings app.js",
        "node --trace-warnings --stack-trace-limit=50 app.js",
        "node -v",
        "node -c app.js",
        "ruby --yjit -w script.rb",
        "java -Xmx512m -XX:+UseG1GC -Dapp.mode=batch -jar app.jar",
    ],
)
def test_ordinary_interpreter_options_still_pass(command: str, search_path: str) -> None:
    allowed([command.split()[0]], command, search_path)


@pytest.mark.parametrize("command", WRAPPERS)
def test_programs_that_run_another_program_are_refused_even_when_listed(
    command: str, search_path: str
) -> None:
    refused([command.split()[0]], command, search_path)


@pytest.mark.parametrize("command", WRAPPERS)
def test_programs_that_run_another_program_are_refused_under_star(command: str, search_path: str) -> None:
    refused(["*"], command, search_path)


@pytest.mark.parametrize("command", LAUNCHING_SUBCOMMANDS)
def test_package_manager_subcommands_that_run_a_named_program_are_refused(
    command: str, search_path: str
) -> None:
    refused([command.split()[0]], command, search_path)


@pytest.mark.parametrize(
    "command",
    ["npm ci", "npm test", "npm run build", "yarn install", "poetry install", "docker ps", "docker logs app"],
)
def test_package_manager_subcommands_running_the_projects_own_scripts_pass(
    command: str, search_path: str
) -> None:
    allowed([command.split()[0]], command, search_path)


@pytest.mark.parametrize(
    "env",
    [
        {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "alias.x", "GIT_CONFIG_VALUE_0": "!touch pwned"},
        {"GIT_EXTERNAL_DIFF": "touch"},
        {"GIT_SSH_COMMAND": "touch pwned"},
        {"GIT_DIR": "/tmp/evil"},
        {"GIT_TRACE": "/tmp/pwned"},
        {"GIT_CONFIG_GLOBAL": "/tmp/evil"},
    ],
)
def test_git_variables_other_than_identity_are_refused_even_under_an_allowed_prefix(
    env: dict[str, str],
) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="not allowed, even when"):
        check_environment(env, ["GIT_*"])


def test_git_identity_variables_pass_under_an_allowed_prefix() -> None:
    env = {"GIT_AUTHOR_NAME": "Bot", "GIT_COMMITTER_EMAIL": "bot@example.org"}
    assert check_environment(env, ["GIT_*"]) == env


@pytest.mark.parametrize(
    "name",
    [
        "HOME", "XDG_CONFIG_HOME", "APP_PAGER", "APP_EDITOR", "APP_CONFIG", "APP_CONFIG_DIR",
        "APP_OPTIONS", "APP_PLUGIN_PATH", "APP_SETTINGS_MODULE", "APP_LOG_FILE", "APP_RC",
        "APP_HOOK_COMMAND",
    ],
)  # fmt: skip
def test_variables_read_as_command_or_config_location_are_refused_under_a_prefix(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="not allowed, even when"):
        check_environment({name: "/tmp/evil"}, ["APP_*", "HOME", "XDG_*"])


@pytest.mark.parametrize(
    "entry", ["HOME", "GIT_CONFIG_COUNT", "GIT_EXTERNAL_DIFF", "APP_PAGER", "PYTHONPATH"]
)
def test_setting_that_lists_a_never_allowed_variable_is_improperly_configured(entry: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_allowed_env"):
        checked_environment_names([entry])


@pytest.mark.parametrize("name", ["APP_MODE", "APP_NAME", "APP_LEVEL", "APP_REGION"])
def test_plain_value_variables_pass_under_a_prefix(name: str) -> None:
    assert check_environment({name: "x"}, ["APP_*"]) == {name: "x"}


def test_huge_integer_timeout_is_a_clear_error_in_run_command() -> None:
    with pytest.raises(ValueError, match="timeout must be a finite"):
        run_command(["/bin/true"], env={}, timeout=10**400, search_path="/usr/bin:/bin")


def test_huge_integer_timeout_in_a_message_is_refused() -> None:
    from celery_jobs_ext.config import JobsConfig
    from celery_jobs_ext.shell.task import _job_timeout

    with pytest.raises(ShellCommandNotAllowed, match="timeout must be a finite"):
        _job_timeout(10**400, JobsConfig())


@pytest.mark.parametrize(
    "command",
    [
        "mysql -e 'system touch pwned' db",
        "mysql -e '\\! touch pwned' db",
        "mysql -e 'select 1; source /tmp/evil.sql' db",
        "mysql -e 'TEE /tmp/pwned' db",
        "mysql -e 'edit' db",
        "mysql -e '\\. /tmp/evil.sql' db",
    ],
)
def test_mysql_client_commands_are_refused_in_a_pattern_wildcard(command: str, search_path: str) -> None:
    refused(["mysql -e * db"], command, search_path)


def test_mysql_sql_passes_a_pattern_wildcard(search_path: str) -> None:
    allowed(["mysql -e * db"], "mysql -e 'select count(*) from orders' db", search_path)


@pytest.mark.parametrize(
    "command", ["tar -f '-oProxyCommand=touch pwned:x' -t", "tar -tf host:/tmp/a.tar", "tar --file=h:a -t"]
)
def test_tar_remote_archive_names_are_refused(command: str, search_path: str) -> None:
    refused(["tar"], command, search_path)


def test_tar_local_archive_with_a_colon_passes_with_force_local(search_path: str) -> None:
    allowed(["tar"], "tar --force-local -tf backup:2026.tar", search_path)


@pytest.mark.parametrize(
    "command", ["mysql -Be'system touch pwned' db", "mysql --execute='source /tmp/x' db"]
)
def test_mysql_client_commands_are_refused_glued_or_as_option_values(command: str, search_path: str) -> None:
    refused(["mysql"], command, search_path)
