"""The sixth red-team round's hits (against main at 2ba167d): reads of another process's environment.

``ps e`` printed every process's environment, awk built ``/proc/<pid>/environ`` at run time
and ``grep -r`` walked into ``/proc`` from ``/``: no argument named the file, so the argument
rules could not see it, and Landlock did not handle reads. The kernel sandbox now confines
reads under ``/proc`` to the system-wide files and the command's own ``/proc/<pid>``. Each
test plants a secret in the environment of a real sleeper (standing in for the worker), runs
the attack with the sandbox required, and asserts the secret never reaches the output; beside
them, ordinary commands that read files, ``/proc/cpuinfo`` and ``/proc/self`` still work.
Skipped, like test_sandbox.py, on a kernel without Landlock.
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

pytestmark = pytest.mark.skipif(kernel_abi() < 1, reason="this kernel has no Landlock")

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
def test_another_processs_environment_cannot_be_read_in_the_sandbox(
    index: int, sleeper: int, secret: str
) -> None:
    output = sandboxed(environ_reads(sleeper)[index])
    assert secret not in output


def test_grep_from_the_root_reaches_no_process_environment(sleeper: int, secret: str) -> None:
    argv = ["grep", "-r", "-a", "-s", "-l", "--include=environ", "--exclude-dir=sys", SECRET_NAME, "/"]
    which("grep")
    try:
        output = sandboxed(argv)
    except ShellCommandTimedOut:
        pytest.skip("grep -r / did not finish within 60 s on this machine")
    assert secret not in output
    assert "/environ" not in output


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


def test_ordinary_reads_of_files_still_work(files: Path) -> None:
    assert sandboxed(["sort", str(files / "log.txt")]) == "a ok\nb error\nc error\n"
    assert sandboxed(["grep", "-r", "-c", "error", str(files)]) == f"{files / 'log.txt'}:2\n"
    assert sandboxed(["cat", str(files / "log.txt")]).startswith("b error")
    assert sandboxed(["du", "-sh", str(files)]).endswith(f"\t{files}\n")


def test_system_wide_proc_files_and_the_commands_own_proc_directory_stay_readable() -> None:
    assert "processor" in sandboxed(["cat", "/proc/cpuinfo"])
    assert "MemTotal" in sandboxed(["cat", "/proc/meminfo"])
    status = sandboxed(["cat", "/proc/self/status"])
    assert status.startswith("Name:\tcat\n")
    assert "Mem:" in sandboxed(["free", "-m"])


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
