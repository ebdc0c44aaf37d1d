"""The sixth red-team round's hits (against main at 2ba167d): reads of another process's environment.

``ps e`` printed every process's environment, awk built ``/proc/<pid>/environ`` at run time
and ``grep -r`` walked into ``/proc`` from ``/``: no argument named the file, so the argument
rules could not see it, and Landlock did not handle reads. The kernel sandbox now confines
reads under ``/proc`` to the system-wide files and the command's own ``/proc/<pid>``. Each
test plants a secret in the environment of a real sleeper (standing in for the worker), runs
the attack with the sandbox required, and asserts the secret never reaches the output; beside
them, ordinary commands that read files, ``/proc/cpuinfo`` and ``/proc/self`` still work.
Those are skipped, like test_sandbox.py, on a kernel without Landlock. The rules for kernels
without it (``ps``'s ``e`` modifier, awk's computed file names, ``/inet`` and ``ARGV``,
recursive readers given ``/``) are validation only, on stand-in programs, and run everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_jobs_ext.errors import ShellCommandFailed, ShellCommandTimedOut
from celery_jobs_ext.shell import run_command
from celery_jobs_ext.shell.sandbox import kernel_abi
from tests.shell.helpers import is_refused, make_programs

needs_landlock = pytest.mark.skipif(kernel_abi() < 1, reason="this kernel has no Landlock")

PATH = "/usr/local/bin:/usr/bin:/bin"
SECRET_NAME = "RT6_SECRET"


def which(name: str) -> str:
    path = shutil.which(name, path=PATH)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="module")
def secret() -> str:
    return f"s3cr3t{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def sleeper(secret: str) -> Iterator[int]:
    """A process with the secret in its environment, as the worker has its broker URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        env={"PATH": PATH, SECRET_NAME: secret},
    )
    yield process.pid
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def sandboxed(argv: list[str], writable: list[str] | None = None, cwd: str | None = None) -> str:
    """stdout + stderr of ``argv`` in the kernel sandbox; a failing exit is an outcome too."""
    which(argv[0])
    try:
        result = run_command(
            argv,
            env={},
            search_path=PATH,
            sandbox="required",
            writable_paths=writable or [],
            cwd=cwd,
            timeout=60,
        )
    except ShellCommandFailed as error:
        return str(error)
    return str(result["stdout"]) + str(result["stderr"])


def environ_reads(pid: int) -> list[list[str]]:
    path = f"/proc/{pid}/environ"
    return [
        ["ps", "eww", "-p", str(pid)],
        ["ps", "wwe", str(pid)],
        ["ps", "-o", "pid,command", "-ww", "e", "-p", str(pid)],
        ["awk", f'BEGIN{{f="/pr" "oc/{pid}/environ"; RS="\\0"; while((getline l < f)>0) print l}}'],
        [
            "awk",
            f'BEGIN{{s=sprintf("%c",47); RS=sprintf("%c",0); f=s "proc" s "{pid}" s "environ"; '
            "while((getline l<f)>0) print l; exit}",
        ],
        ["awk", f'BEGIN{{ARGV[1]="/pr" "oc/{pid}/environ"; ARGC=2; RS="\\0"}} {{print}}'],
        ["gawk", f'BEGIN{{ARGV[1]="/pr" "oc/{pid}/environ"; ARGC=2; RS="\\0"}} {{print}}'],
        ["mawk", f'BEGIN{{ARGV[1]="/pr" "oc/{pid}/environ"; ARGC=2; RS="\\0"}} {{print}}'],
        ["grep", "-r", "-a", "-s", "-h", "--include=environ", SECRET_NAME, "/proc"],
        ["grep", "-r", "-a", "-s", "-h", "--include=environ", SECRET_NAME, f"/proc/{pid}"],
        ["cat", path],
        ["cat", f"/proc/self/root{path}"],
        ["cat", f"/proc/{pid}/cmdline", f"/proc/{pid}/task/{pid}/environ"],
        ["python3", "-c", f"print(open('{path}').read())"],
    ]


@pytest.mark.parametrize(
    "index", range(len(environ_reads(1))), ids=lambda i: " ".join(environ_reads(1)[i])[:60]
)
@needs_landlock
def test_another_processs_environment_cannot_be_read_in_the_sandbox(
    index: int, sleeper: int, secret: str
) -> None:
    output = sandboxed(environ_reads(sleeper)[index])
    assert secret not in output


@needs_landlock
def test_grep_from_the_root_reaches_no_process_environment(sleeper: int, secret: str) -> None:
    argv = ["grep", "-r", "-a", "-s", "-l", "--include=environ", "--exclude-dir=sys", SECRET_NAME, "/"]
    which("grep")
    try:
        output = sandboxed(argv)
    except ShellCommandTimedOut:
        pytest.skip("grep -r / did not finish within 60 s on this machine")
    assert secret not in output
    assert "/environ" not in output


@needs_landlock
def test_an_oracle_on_the_exit_code_learns_nothing(sleeper: int, secret: str) -> None:
    argv = ["grep", "-r", "-q", "-a", "-s", "--include=environ", f"{SECRET_NAME}={secret[:8]}", "/proc"]
    which("grep")
    with pytest.raises(ShellCommandFailed):  # no match anywhere: exit 1 or 2, never 0
        run_command(argv, env={}, search_path=PATH, sandbox="required", timeout=60)


# --- what must keep working -------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    data = tmp_path / "srv"
    data.mkdir()
    (data / "log.txt").write_text("b error\na ok\nc error\n")
    return data


@needs_landlock
def test_ordinary_reads_of_files_still_work(files: Path) -> None:
    assert sandboxed(["sort", str(files / "log.txt")]) == "a ok\nb error\nc error\n"
    assert sandboxed(["grep", "-r", "-c", "error", str(files)]) == f"{files / 'log.txt'}:2\n"
    assert sandboxed(["cat", str(files / "log.txt")]).startswith("b error")
    assert sandboxed(["du", "-sh", str(files)]).endswith(f"\t{files}\n")


@needs_landlock
def test_system_wide_proc_files_and_the_commands_own_proc_directory_stay_readable() -> None:
    assert "processor" in sandboxed(["cat", "/proc/cpuinfo"])
    assert "MemTotal" in sandboxed(["cat", "/proc/meminfo"])
    status = sandboxed(["cat", "/proc/self/status"])
    assert status.startswith("Name:\tcat\n")
    assert "Mem:" in sandboxed(["free", "-m"])


@needs_landlock
def test_common_programs_still_run_in_the_sandbox(tmp_path: Path, files: Path) -> None:
    assert sandboxed(["python3", "-c", "print(1)"]) == "1\n"
    assert sandboxed(["uname", "-a"]).startswith("Linux")
    assert sandboxed(["id"]).startswith("uid=")
    assert sandboxed(["date", "+%Y"]).strip().isdigit()
    assert "Filesystem" in sandboxed(["df", "-h"])
    assert sandboxed(["redis-cli", "--version"]).startswith("redis-cli")
    assert len(sandboxed(["head", "-c", "8", "/dev/urandom"]).encode("utf-8", "surrogateescape")) > 0
    assert sandboxed(["cat", "/etc/hostname"]).strip()
    assert sandboxed(["ls", "/sys/class"]).strip()
    assert "usr" in sandboxed(["ls", "/"]).split()


@needs_landlock
def test_git_and_tar_still_work_in_the_sandbox(tmp_path: Path, files: Path) -> None:
    git = which("git")
    repo = tmp_path / "repo"
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    (repo / "new.txt").write_text("x\n")
    assert "?? new.txt" in sandboxed(["git", "status", "--short"], cwd=str(repo))
    out = tmp_path / "out"
    out.mkdir()
    sandboxed(["tar", "-czf", str(out / "srv.tgz"), "-C", str(files), "."], writable=[str(out)])
    listing = subprocess.run(
        ["tar", "-tzf", str(out / "srv.tgz")], capture_output=True, text=True, check=True
    )
    assert "./log.txt" in listing.stdout.split()


# --- the rules, for kernels without Landlock (validation only) -------------------------------

RULE_PROGRAMS = [
    "ps",
    "awk",
    "gawk",
    "mawk",
    "grep",
    "rgrep",
    "rg",
    "ag",
    "ack",
    "tar",
    "zip",
    "rsync",
    "diff",
]


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), RULE_PROGRAMS))


@pytest.mark.parametrize(
    "command",
    [
        "ps eww -p 123", "ps wwe 123", "ps e ww 123", "ps -ww e -q 123", "ps -o pid,command -ww e -p 123",
        "ps ewwax", "ps axeww", "ps auxeww", "ps -ef e", "ps -e -ww e", "ps eww -C python",
        "ps --format pid,args -e e -w -w", "ps p 123 e",
    ],
)  # fmt: skip
def test_ps_environment_modifier_is_refused(command: str, search_path: str) -> None:
    assert is_refused(command, ["ps"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "ps -ef", "ps aux", "ps -o pid,user,etime,command -p 123", "ps -p 123 -o etime=", "ps -eo pid,comm",
        "ps aux --sort -rss", "ps -C python -o pid", "ps --sort start -e", "ps p 123", "ps -U www-data",
        "ps 123", "ps -e", "ps -O user -e", "ps o pid,user,etime",
    ],
)  # fmt: skip
def test_ps_without_the_environment_modifier_still_passes(command: str, search_path: str) -> None:
    assert not is_refused(command, ["ps"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        """awk 'BEGIN{f="/pr" "oc/1/environ"; RS="\\0"; while((getline l < f)>0) print l}'""",
        """awk 'BEGIN{f=sprintf("%cproc%c1%cenviron",47,47,47); while((getline l < f)>0) print l}'""",
        """awk 'BEGIN{ARGV[1]="/pr" "oc/1/environ"; ARGC=2} {print}'""",
        """gawk 'BEGIN{getline l < "/pr" "oc/1/environ"; print l}'""",
        """mawk 'BEGIN{getline < ("/pr" "oc/1/environ")}'""",
        """awk -v f=/pr 'BEGIN{f=f "oc/1/environ"; while((getline l<f)>0) print l}'""",
        """awk 'NR==1{getline x < FILENAME ".bak"; print x}' log.txt""",
        """gawk 'BEGIN{f="/inet/tcp/0/127.0.0.1/6379"; getline r < f; print r}'""",
        """gawk 'BEGIN{getline r < "/inet/tcp/0/127.0.0.1/6379"; print r}'""",
        """gawk '{print}' /inet/tcp/0/127.0.0.1/6379""",
        """awk '{print}' ARGC=3""",
        """awk -vARGC=3 '{print}' a b c""",
        """awk --assign=ARGC=3 '{print}' a b c""",
        """awk -v ARGC=3 '{print}' a b c""",
    ],
)
def test_awk_reading_a_computed_file_name_or_a_network_file_is_refused(
    command: str, search_path: str
) -> None:
    assert is_refused(command, ["awk", "gawk", "mawk"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "awk '{print $1}' /srv/log.txt",
        "awk -F, 'NR==1{print $2}' data.csv",
        """awk 'BEGIN{while((getline l < "/etc/hostname")>0) n++; print n}'""",
        "awk '{ if ($3 < 100) print }' data.txt",
        "awk 'BEGIN{getline; print $0}'",
        "awk '{getline line; print line}' data.txt",
        """awk '{getline x < "other.txt"} END{print x}' data.txt""",
        "awk 'NR<3' data.txt",
    ],
)
def test_awk_reading_its_operands_and_literal_files_still_passes(command: str, search_path: str) -> None:
    assert not is_refused(command, ["awk"], search_path)


@pytest.mark.parametrize(
    "command",
    [
        "grep -r -a SECRET /", "grep -rl x //", "grep -R x /.", "grep --recursive x /", "grep -d recurse x /",
        "grep -drecurse x /", "grep -ra x /..", "rgrep x /", "rg x /", "ag x /", "ack x /",
        "tar -czf - /", "tar czf - /", "rsync -a / host:/backup", "rsync -r / host:/backup", "diff -r / /srv",
        "grep --directories=recurse x /",
    ],
)  # fmt: skip
def test_recursive_readers_given_the_root_are_refused(command: str, search_path: str) -> None:
    assert is_refused(command, RULE_PROGRAMS, search_path)


@pytest.mark.parametrize(
    "command",
    [
        "grep -r x /srv", "grep x /", "grep -c x /etc/hostname", "rg x /srv", "tar -czf - /srv/data",
        "diff / /srv", "grep -e / -r /srv", "rsync -a /srv/ host:/backup/", "tar -czf - -C / etc",
    ],
)  # fmt: skip
def test_recursive_readers_given_a_directory_still_pass(command: str, search_path: str) -> None:
    assert not is_refused(command, RULE_PROGRAMS, search_path)


# --- a procfs mounted elsewhere ------------------------------------------------------------


def test_a_procfs_mounted_elsewhere_is_left_out_of_the_read_grants(tmp_path: Path) -> None:
    from celery_jobs_ext.shell import landlock

    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "procfs").mkdir()
    (tmp_path / "data" / "file.txt").write_text("x")
    (tmp_path / "other").mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        f"40 27 0:21 / {tmp_path}/data/procfs rw,relatime - proc proc rw\n"
        f"41 27 0:30 / {tmp_path}/other rw,relatime - tmpfs tmpfs rw\n"
    )
    excluded = landlock._proc_mounts(str(mountinfo))
    assert excluded == {"/proc", f"{tmp_path}/data/procfs"}
    granted = landlock._granted(str(tmp_path), excluded)
    assert sorted(granted) == sorted(
        [
            str(tmp_path / "data" / "sub"),
            str(tmp_path / "data" / "file.txt"),
            str(tmp_path / "mountinfo"),
            str(tmp_path / "other"),
        ]
    )


@needs_landlock
def test_the_private_tmpdir_writable_paths_and_dev_null_stay_readable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import os, tempfile\n"
        "fd, path = tempfile.mkstemp(); os.write(fd, b'tmp'); os.close(fd)\n"
        "written = os.path.join(os.environ['OUT'], 'w.txt'); open(written, 'w').write('out')\n"
        "print(open(path).read(), open(written).read(), repr(open('/dev/null').read()))"
    )
    which("python3")
    result = run_command(
        ["python3", "-c", code],
        env={"OUT": str(out)},
        allowed_env=["OUT"],
        search_path=PATH,
        sandbox="required",
        writable_paths=[str(out)],
        timeout=60,
    )
    assert result["stdout"] == "tmp out ''\n"
