"""The third red-team round's hits (against main at 7cc8c74, 2026-12-04), each refused by its class.

Every refused command here ran a program, read or wrote a file when the attacker tried it on a
real system. Validation never runs anything, so the programs are stand-ins on a temporary
search path: no test depends on what is installed. Beside the hits are ordinary uses (the
suggested sqlite3 pattern) that must pass.
"""

from __future__ import annotations

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_environment, validate_command
from celery_jobs_ext.shell.environment import checked_environment_names
from tests.shell.helpers import is_refused, make_programs

PROGRAMS = [
    "node", "perl", "ruby", "python3", "openssl", "systemctl", "redis-cli", "ip", "curl", "sqlite3", "git",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


# --- 1. interpreters running installed software ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "node /usr/lib/node_modules/npm/bin/npm-cli.js --cache=/tmp/x/c --offline "
        "exec -c 'touch /tmp/x/pwned'",
        "node /usr/lib/node_modules/npm/bin/npx-cli.js --cache=/tmp/x/c -c 'touch /tmp/x/pwned'",
        "perl -S prove --exec 'touch /tmp/x/pwned' /tmp/x/t.t",
        "perl -wS prove --exec='touch /tmp/x/pwned' /tmp/x/t.t",
        "perl -S ptar -c -f /tmp/x/pwned /etc/hostname",
        "ruby -S gem install x",
        "python3 /usr/share/python-wheels/pip-23.0.1-py3-none-any.whl/pip --no-cache-dir "
        "--log /tmp/x/pwned list",
        "python3 /usr/lib/python3/dist-packages/pip install x",
        "python3 /srv/venv/lib/python3.11/site-packages/pip/__main__.py list",
        "python3 /usr/lib/google-cloud-sdk/platform/gsutil/third_party/mock/mock/tests",
        "perl /opt/tools/bin/helper.pl",
    ],
)
def test_interpreter_running_installed_software_is_refused(command: str, search_path: str) -> None:
    program = command.split()[0]
    assert is_refused(command, [program], search_path)


@pytest.mark.parametrize(
    "command",
    ["node /srv/app/server.js --port 8080", "perl -w /srv/app/report.pl -S x", "python3 /srv/app/main.py"],
)
def test_interpreter_running_the_applications_own_script_passes(command: str, search_path: str) -> None:
    assert not is_refused(command, [command.split()[0]], search_path)


# --- 4. env names that carry commands or code ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["CFLAGS", "CC", "LDFLAGS", "LUA_INIT_5_4", "ERL_AFLAGS", "ERL_ZFLAGS", "GOFLAGS", "RUSTC_WRAPPER",
     "CARGO_BUILD_RUSTC_WRAPPER", "CCACHE_PREFIX", "CMAKE_C_COMPILER_LAUNCHER",
     "KUBECTL_EXTERNAL_DIFF", "DOTNET_STARTUP_HOOKS", "TAPE"],
)  # fmt: skip
def test_env_names_that_carry_commands_are_refused(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({name: "; touch /tmp/x/pwned ;"}, [name])


@pytest.mark.parametrize(
    "name", ["CFLAGS", "RUSTC_WRAPPER", "CCACHE_PREFIX", "LUA_INIT", "TAPE", "MAKEFLAGS"]
)
def test_listing_a_name_that_carries_commands_is_a_configuration_error(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        checked_environment_names([name])


@pytest.mark.parametrize("value", ["..", "en:../../tmp/x", ".hidden", "fr:/tmp/x"])
def test_language_with_path_like_values_is_refused(value: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({"LANGUAGE": value})


def test_language_list_of_locale_names_passes() -> None:
    assert check_environment({"LANGUAGE": "fr_FR:fr:en"}) == {"LANGUAGE": "fr_FR:fr:en"}


# --- 5. openssl options that write files ----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "openssl cms -verify -in /tmp/x/s.p7 -inform PEM -noverify -certsout /tmp/x/pwned",
        "openssl cms -verify -in /tmp/x/s.p7 -inform PEM -noverify -signer /tmp/x/pwned",
        "openssl smime -verify -in /tmp/x/s.p7 -noverify -signer /tmp/x/pwned",
        "openssl x509 -req -in /tmp/x/r.csr -CA /tmp/x/c.pem -CAkey /tmp/x/k.pem -CAserial /tmp/x/pwned",
    ],
)
def test_openssl_options_that_write_files_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["openssl"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "openssl genrsa 2048",
        "openssl x509 -in c.pem -signkey k.pem",
        "openssl cms -sign -in a",
        "openssl ts -reply",
    ],
)
def test_openssl_subcommands_and_options_outside_the_read_only_list_are_refused(
    command: str, search_path: str
) -> None:
    assert is_refused(command, ["openssl"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "openssl x509 -noout -text -in /etc/ssl/cert.pem",
        "openssl s_client -connect example.org:443 -servername example.org -showcerts",
        "openssl sha256 /srv/app/file",
        "openssl verify -CAfile /etc/ssl/ca.pem /srv/cert.pem",
        "openssl cms -verify -in /srv/s.p7 -inform PEM -noverify",
    ],
)
def test_ordinary_openssl_commands_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, ["openssl"], search_path)


# --- 2. abbreviations of options and subcommands --------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "systemctl --roo=/tmp/x/root enable rt3.service",
        "systemctl --ro=/tmp/x/root list-unit-files",
        "systemctl --ho=127.0.0.1 status x",
        "systemctl --mach=x status",
        "systemctl --ima=x status",
    ],
)
def test_systemctl_abbreviated_remote_and_root_options_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["systemctl"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "ip netns exe ns1 touch /tmp/x/pwned",
        "ip netns ex ns1 touch /tmp/x/pwned",
        "ip netns e ns1 touch /tmp/x/pwned",
        "ip -all netns exe touch /tmp/x/pwned",
        "ip vrf exe default touch /tmp/x/pwned",
    ],
)
def test_ip_exec_prefixes_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["ip"], search_path)


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("systemctl --no-pager status nginx", "systemctl"),
        ("systemctl --user list-units", "systemctl"),
        ("ip -br addr show", "ip"),
        ("ip netns list", "ip"),
    ],
)
def test_ordinary_systemctl_and_ip_commands_pass(command: str, allowed: str, search_path: str) -> None:
    assert not is_refused(command, [allowed], search_path)


# --- 3. redis-cli options that take a value ---------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "redis-cli -n 12 --show-pushes no CONFIG SET dir /tmp/x",
        "redis-cli -n 12 --pipe-timeout 1 CONFIG SET dbfilename pwned",
        "redis-cli -n 12 -X tag CONFIG SET dir /tmp/x",
        "redis-cli --cluster call 127.0.0.1:6379 CONFIG SET dir /tmp/x",
    ],
)
def test_redis_cli_value_options_do_not_hide_refused_commands(command: str, search_path: str) -> None:
    assert is_refused(command, ["redis-cli"], search_path)


@pytest.mark.parametrize(
    "command",
    ["redis-cli --replica CONFIG SET dir /tmp/x", "redis-cli --hostname db GET k", "redis-cli -h=db GET k"],
)
def test_redis_cli_unknown_options_are_refused_and_flags_take_no_value(
    command: str, search_path: str
) -> None:
    assert is_refused(command, ["redis-cli"], search_path)


@pytest.mark.parametrize(
    "command",
    ["redis-cli -h db -n 1 --raw GET k", "redis-cli --scan --pattern 'user:*'", "redis-cli -X tag GET k"],
)
def test_ordinary_redis_cli_commands_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, ["redis-cli"], search_path)


# --- 6. curl file: URLs in any spelling ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:/etc/hostname",
        "FILE:/etc/hostname",
        "file:\\\\etc\\hostname",
        "--url=file:/etc/x",
        "{file,http}:/etc/x",
    ],
)
def test_curl_file_scheme_in_any_spelling_is_refused(url: str, search_path: str) -> None:
    assert is_refused(f"curl -o - '{url}'", ["curl"], search_path)


@pytest.mark.parametrize(
    "command",
    ["curl -o - https://example.org/", "curl --cookie 'a=b' -H 'Accept: text/plain' https://example.org/"],
)
def test_ordinary_curl_downloads_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, ["curl"], search_path)


# --- 7. false refusals: the suggested patterns ---------------------------------------------------


@pytest.mark.parametrize("sql", [".tables", ".dump", ".mode csv", "select 10/2"])
def test_sqlite_suggested_pattern_allows_dot_commands_and_division(sql: str, search_path: str) -> None:
    argv = validate_command(
        f"sqlite3 -readonly /srv/app.db '{sql}'",
        ["sqlite3 -readonly /srv/app.db *"],
        denied_arguments={},
        search_path=search_path,
    )
    assert argv[-1] == sql


@pytest.mark.parametrize(
    "sql", [".schema users", ".headers on", ".print done", "select * from t where path = '/a/b'"]
)
def test_sqlite_suggested_pattern_allows_more_read_only_uses(sql: str, search_path: str) -> None:
    assert not is_refused(
        f"sqlite3 -readonly /srv/app.db '{sql}'", ["sqlite3 -readonly /srv/app.db *"], search_path
    )


@pytest.mark.parametrize(
    "sql", [".shell touch /tmp/x/pwned", ".sh id", "select writefile('/tmp/x/p', 'x')", "-cmd"]
)
def test_sqlite_suggested_pattern_still_refuses_what_the_rules_refuse(sql: str, search_path: str) -> None:
    assert is_refused(
        f"sqlite3 -readonly /srv/app.db '{sql}'", ["sqlite3 -readonly /srv/app.db *"], search_path
    )


@pytest.mark.parametrize(
    "command", ["git -C /srv/repo log --oneline", "git -C /srv/repo log -n1", "git -C /srv/repo status"]
)
def test_rest_of_a_pattern_allows_options_the_program_rules_accept(command: str, search_path: str) -> None:
    assert not is_refused(command, ["git -C /srv/repo ..."], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "git -C /srv/repo -c alias.x=!sh x",
        "git -C /srv/repo log --output=/tmp/x/pwned",
        "git -C /srv/repo -C /tmp log",
    ],
)
def test_rest_of_a_pattern_still_refuses_what_the_program_rules_refuse(
    command: str, search_path: str
) -> None:
    assert is_refused(command, ["git -C /srv/repo ..."], search_path)


def test_rest_of_a_pattern_does_not_pin_what_the_program_writes_by_default(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    search_path = str(make_programs(tmp_path_factory.mktemp("wget"), ["wget"]))
    assert is_refused("wget https://example.org/x -q", ["wget https://example.org/x ..."], search_path)
    assert not is_refused(
        "wget https://example.org/x -q -O -", ["wget https://example.org/x ..."], search_path
    )


def test_npm_call_option_abbreviated_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    search_path = str(make_programs(tmp_path_factory.mktemp("npm"), ["npm"]))
    assert is_refused("npm --cal='touch /tmp/x/pwned' ls", ["npm"], search_path)
    # Round 4: a bare npm refuses --ca too (a chosen CA lets a chosen server stand in for the
    # registry), but --ca is still not read as an abbreviation of --call.
    with pytest.raises(ShellCommandNotAllowed) as refused:
        validate_command("npm --ca=/srv/ca.pem ls", ["npm"], denied_arguments={}, search_path=search_path)
    assert "command string" not in str(refused.value)
    assert not is_refused("npm --ca=/srv/ca.pem ls", ["npm --ca=/srv/ca.pem ls"], search_path)
