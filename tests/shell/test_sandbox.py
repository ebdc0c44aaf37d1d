"""The kernel sandbox (Landlock): what an allowed program may execute, write and signal.

Real programs, real processes: each attack names a marker file the command would create if it
got through, and each test asserts on the file system. The argument rules are bypassed on
purpose (``run_command`` takes the argv as it is): the sandbox must hold by itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandFailed, ShellCommandNotAllowed
from celery_jobs_ext.shell import run_command, shell_task
from celery_jobs_ext.shell.sandbox import ABI_LIMIT_VARIABLE, elf_interpreter, kernel_abi, shebang
from tests.harness import in_process_worker
from tests.shell.helpers import assert_dead, is_dead, program_paths, read_pid

ABI = kernel_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="this kernel has no Landlock")
needs_signal_scope = pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6 (Linux 6.12)")
PATH = "/usr/local/bin:/usr/bin:/bin"


def run(argv: list[str], **options: object) -> dict[str, object]:
    """run_command with the task's empty environment and the default search path."""
    options.setdefault("env", {})
    options.setdefault("search_path", PATH)
    options.setdefault("timeout", 60)
    return run_command(argv, **options)  # type: ignore[arg-type]


def which(name: str) -> str:
    path = shutil.which(name, path=PATH)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def places(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """``bin`` (programs the test writes), ``out`` (listed writable), ``elsewhere`` (not listed)."""
    found = {name: tmp_path / name for name in ("bin", "out", "elsewhere")}
    for directory in found.values():
        directory.mkdir()
    (found["elsewhere"] / "existing").write_text("original\n")
    yield found


def script(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


# -- execute ----------------------------------------------------------------------------


@needs_landlock
def test_an_allowed_program_cannot_execute_a_program_not_listed(places: dict[str, Path]) -> None:
    marker = places["elsewhere"] / "ran"
    runner = script(
        places["bin"],
        "run-a-shell",
        f"#!{sys.executable}\nimport os, sys\nos.execv('/bin/sh', ['sh', '-c', 'touch ' + sys.argv[1]])\n",
    )
    with pytest.raises(ShellCommandFailed) as caught:
        run([runner, str(marker)])
    assert not marker.exists()
    assert "Permission denied" in caught.value.stderr_tail
    assert "jobs_shell_sandbox_executables" in caught.value.stderr_tail  # the note says why
    run([runner, str(marker)], sandbox="off")  # the same command unsandboxed does run a shell
    assert marker.exists()


@needs_landlock
def test_gcc_wrapper_cannot_run_a_shell(places: dict[str, Path]) -> None:
    gcc = which("gcc")
    marker = places["elsewhere"] / "gcc-ran"
    with pytest.raises(ShellCommandFailed, match="Permission denied"):
        run([gcc, "-wrapper", f"/bin/sh,-c,touch {marker}", "-x", "c", "-c", "/dev/null", "-o", "/dev/null"])
    assert not marker.exists()


@needs_landlock
def test_find_exec_cannot_run_a_shell(places: dict[str, Path]) -> None:
    marker = places["elsewhere"] / "find-ran"
    # find reports the failed -exec on stderr and still exits 0
    result = run(
        [
            which("find"),
            str(places["bin"]),
            "-maxdepth",
            "0",
            "-exec",
            "/bin/sh",
            "-c",
            f"touch {marker}",
            ";",
        ]
    )
    assert "Permission denied" in str(result["stderr"])
    assert not marker.exists()


@needs_landlock
def test_code_run_through_the_dynamic_loader_still_cannot_write(places: dict[str, Path]) -> None:
    """The documented limit: the loader of an allowed program is executable and loads any ELF
    file, so ``gcc -wrapper LOADER,python3,...`` runs Python; it still writes nothing."""
    gcc = which("gcc")
    loader = elf_interpreter(os.path.realpath(gcc))
    if loader is None:
        pytest.skip("gcc is statically linked")
    marker = places["elsewhere"] / "loader-wrote"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"  # no comma: gcc splits on them
    with pytest.raises(ShellCommandFailed, match="PermissionError"):
        run([gcc, "-wrapper", f"{loader},{os.path.realpath(sys.executable)},-c,{code}", "-x", "c", "-c",
             "/dev/null", "-o", "/dev/null"])  # fmt: skip
    assert not marker.exists()


@needs_landlock
def test_listed_executables_may_run(places: dict[str, Path]) -> None:
    runner = script(
        places["bin"], "run-true", f"#!{sys.executable}\nimport os\nos.execv('/bin/true', ['true'])\n"
    )
    with pytest.raises(ShellCommandFailed):
        run([runner])
    assert run([runner], sandbox_executables=["/bin/true"])["returncode"] == 0


@needs_landlock
@pytest.mark.parametrize("interpreter", ["/bin/sh", "/usr/bin/env python3"])
def test_a_script_runs_with_its_shebang_interpreter(places: dict[str, Path], interpreter: str) -> None:
    body = "echo from-script\n" if interpreter == "/bin/sh" else "print('from-script')\n"
    program = script(places["bin"], "hello", f"#!{interpreter}\n{body}")
    assert run([program])["stdout"] == "from-script\n"


def test_shebang_and_elf_interpreter_are_read_as_the_kernel_reads_them(tmp_path: Path) -> None:
    program = script(tmp_path, "s", "#! /usr/bin/env  -S python3 -u\nprint(1)\n")
    assert shebang(program) == ("/usr/bin/env", "-S python3 -u")
    assert shebang(script(tmp_path, "t", "echo no shebang\n")) is None
    loader = elf_interpreter(os.path.realpath(sys.executable))
    assert loader is None or (loader.startswith("/") and "ld" in os.path.basename(loader))


# -- write ------------------------------------------------------------------------------

WRITERS = {
    "tee": lambda source, target: ["tee", target],
    "cp": lambda source, target: ["cp", source, target],
    "sort -o": lambda source, target: ["sort", "-o", target, source],
    "shuf -o": lambda source, target: ["shuf", "-o", target, source],
    "uniq IN OUT": lambda source, target: ["uniq", source, target],
    "touch": lambda source, target: ["touch", target],
    "mkdir": lambda source, target: ["mkdir", target],
    "ln -s": lambda source, target: ["ln", "-s", source, target],
    "python open": lambda source, target: ["python3", "-c", f"open({target!r}, 'w').write('x')"],
}


@needs_landlock
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_program_writes_outside_the_writable_paths(places: dict[str, Path], writer: str) -> None:
    target = places["elsewhere"] / "written"
    argv = WRITERS[writer](str(places["elsewhere"] / "existing"), str(target))
    with pytest.raises(ShellCommandFailed, match=r"Permission denied|Operation not permitted"):
        run([which(argv[0]), *argv[1:]], writable_paths=[str(places["out"])])
    assert not target.exists()
    assert not target.is_symlink()


@needs_landlock
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_programs_write_under_the_writable_paths(places: dict[str, Path], writer: str) -> None:
    target = places["out"] / "deeper" / "written"
    target.parent.mkdir()
    argv = WRITERS[writer](str(places["elsewhere"] / "existing"), str(target))
    run([which(argv[0]), *argv[1:]], writable_paths=[str(places["out"])])
    assert target.exists() or target.is_symlink()


@needs_landlock
@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "{existing}"],
        ["mv", "{existing}", "{out}/moved"],
        ["truncate", "-s", "0", "{existing}"],
        ["dd", "if=/dev/zero", "of={existing}", "count=1"],
        ["ln", "{existing}", "{out}/hard-link"],  # a hard link would make it writable
        ["chmod", "000", "{existing}"],  # metadata is not a write: allowed (see docs)
    ],
)
def test_an_existing_file_outside_the_writable_paths_keeps_its_content(
    places: dict[str, Path], argv: list[str]
) -> None:
    existing = places["elsewhere"] / "existing"
    words = [word.format(existing=existing, out=places["out"]) for word in argv]
    try:
        run([which(words[0]), *words[1:]], writable_paths=[str(places["out"])])
    except ShellCommandFailed as error:
        assert "jobs_shell_writable_paths" in error.stderr_tail  # denied, and the note says why
    existing.chmod(0o644)
    assert existing.read_text() == "original\n"


@needs_landlock
def test_the_private_tmpdir_is_writable_and_removed_afterwards(places: dict[str, Path]) -> None:
    code = (
        "import os, tempfile\n"
        "d = os.environ['TMPDIR']\n"
        "os.makedirs(d + '/a/b'); open(d + '/a/b/f', 'w').write('x'); os.chmod(d + '/a', 0)\n"
        "with tempfile.NamedTemporaryFile(delete=False) as f: print(f.name)\n"
        "print(d)\n"
    )
    temporary, private = str(run([which("python3"), "-c", code])["stdout"]).split()
    assert temporary.startswith(private + "/")
    assert os.path.basename(private).startswith("jobs-shell-")
    assert not os.path.exists(private)


@needs_landlock
def test_writing_to_stdout_and_dev_null_works(places: dict[str, Path]) -> None:
    source = str(places["elsewhere"] / "existing")
    assert run([which("sort"), "-o", "/dev/stdout", source])["stdout"] == "original\n"
    assert run([which("cp"), source, "/dev/null"])["returncode"] == 0
    assert run([which("python3"), "-c", "open('/dev/null', 'w').write('x')"])["returncode"] == 0


@needs_landlock
def test_ordinary_commands_keep_working(places: dict[str, Path]) -> None:
    assert run([which("redis-cli"), "--version"])["stdout"].startswith("redis-cli")  # type: ignore[union-attr]
    assert run([which("python3"), "-c", "print(1)"])["stdout"] == "1\n"
    assert run([which("grep"), "-c", "original", str(places["elsewhere"] / "existing")])["stdout"] == "1\n"
    assert str(run([which("du"), "-s", str(places["elsewhere"])])["stdout"]).endswith(
        f"{places['elsewhere']}\n"
    )
    repo = places["elsewhere"] / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "file").write_text("x\n")
    status = run([which("git"), "status", "--porcelain"], cwd=str(repo))
    assert status["stdout"] == "?? file\n"


@needs_landlock
def test_a_program_inside_a_writable_path_is_refused(places: dict[str, Path]) -> None:
    program = script(places["out"], "job", "#!/bin/sh\necho hi\n")
    with pytest.raises(ShellCommandNotAllowed, match="replace a program"):
        run([program], writable_paths=[str(places["out"])])


# -- signals ----------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


@needs_signal_scope
def test_the_command_cannot_signal_a_process_outside_its_sandbox(sleeper: subprocess.Popen[bytes]) -> None:
    code = f"import os\nos.kill({sleeper.pid}, {int(signal.SIGKILL)})\n"
    with pytest.raises(ShellCommandFailed, match="Operation not permitted"):
        run([which("python3"), "-c", code])
    assert not is_dead(sleeper.pid)
    run([which("python3"), "-c", code], sandbox="off")
    assert_dead(sleeper.pid)


@needs_signal_scope
def test_the_command_cannot_kill_its_helper_and_its_descendants_are_still_reaped(tmp_path: Path) -> None:
    code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen(['setsid', 'sleep', '300'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "os.kill(os.getppid(), 9)\n"
    )
    with pytest.raises(ShellCommandFailed, match="Operation not permitted"):
        run(
            [which("python3"), "-c", code, str(tmp_path / "pid")],
            sandbox_executables=program_paths("setsid", "sleep"),
            writable_paths=[str(tmp_path)],
        )
    assert_dead(int((tmp_path / "pid").read_text()))


# -- modes and settings -----------------------------------------------------------------


def test_required_refuses_every_command_when_landlock_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, places: dict[str, Path]
) -> None:
    monkeypatch.setenv(ABI_LIMIT_VARIABLE, "0")
    marker = places["elsewhere"] / "ran"
    with pytest.raises(ShellCommandNotAllowed, match="jobs_shell_sandbox = 'required'"):
        run([which("touch"), str(marker)], sandbox="required")
    assert not marker.exists()
    run([which("touch"), str(marker)], sandbox="auto")  # auto: argument rules only
    assert marker.exists()


def test_required_refuses_in_the_worker_too(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Celery]
) -> None:
    monkeypatch.setenv(ABI_LIMIT_VARIABLE, "0")
    app = make_app(jobs_allowed_shell_commands=["echo"], jobs_shell_sandbox="required")
    shell = shell_task(app)
    with in_process_worker(app), pytest.raises(ShellCommandNotAllowed, match="jobs_shell_sandbox"):
        shell.delay("echo hi").get(timeout=30)


def test_off_runs_unsandboxed(places: dict[str, Path]) -> None:
    marker = places["elsewhere"] / "written"
    run([which("touch"), str(marker)], sandbox="off")
    assert marker.exists()


@needs_landlock
@pytest.mark.parametrize("abi", [1, 2, 5])
def test_older_landlock_versions_still_confine_writes_and_execution(
    monkeypatch: pytest.MonkeyPatch, places: dict[str, Path], abi: int
) -> None:
    monkeypatch.setenv(ABI_LIMIT_VARIABLE, str(abi))
    marker = places["elsewhere"] / "written"
    with pytest.raises(ShellCommandFailed):
        run([which("touch"), str(marker)])
    run([which("find"), "/", "-maxdepth", "0", "-exec", "/bin/sh", "-c", f"touch {marker}", ";"])
    assert not marker.exists()
    run([which("touch"), str(places["out"] / "ok")], writable_paths=[str(places["out"])])
    assert (places["out"] / "ok").exists()


@needs_landlock
def test_the_task_runs_in_the_sandbox_and_says_so_when_denied(
    make_app: Callable[..., Celery], places: dict[str, Path]
) -> None:
    # Patterns, not a bare "touch": since round 4 the argument rules refuse a bare touch of any
    # file, and this test is about what the sandbox does with a command the rules allow.
    allowed = [f"touch {places['out']}/ok", f"touch {places['elsewhere']}/no"]
    app = make_app(jobs_allowed_shell_commands=allowed, jobs_shell_writable_paths=[str(places["out"])])
    shell = shell_task(app)
    with in_process_worker(app):
        assert shell.delay(f"touch {places['out']}/ok").get(timeout=30)["returncode"] == 0
        with pytest.raises(ShellCommandFailed) as caught:
            shell.delay(f"touch {places['elsewhere']}/no").get(timeout=30)
    assert (places["out"] / "ok").exists()
    assert not (places["elsewhere"] / "no").exists()
    assert "Permission denied" in str(caught.value)
    assert "jobs_shell_writable_paths" in str(caught.value)


def test_worker_logs_at_start_up_whether_the_sandbox_is_active(
    make_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(jobs_allowed_shell_commands=["echo"])
    shell_task(app)
    with caplog.at_level(logging.INFO, logger="celery_jobs_ext.shell"), in_process_worker(app):
        pass
    expected = f"Landlock ABI {ABI}" if ABI >= 1 else "kernel sandbox unavailable"
    assert [r for r in caplog.records if expected in r.getMessage()]
    caplog.clear()
    monkeypatch.setenv(ABI_LIMIT_VARIABLE, "0")
    with caplog.at_level(logging.INFO, logger="celery_jobs_ext.shell"), in_process_worker(app):
        pass
    warnings = [r for r in caplog.records if "kernel sandbox unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("jobs_shell_sandbox", "yes"),
        ("jobs_shell_sandbox", True),
        ("jobs_shell_sandbox", None),
        ("jobs_shell_sandbox_executables", "/usr/bin/gzip"),
        ("jobs_shell_sandbox_executables", ["usr/bin/gzip"]),
        ("jobs_shell_sandbox_executables", ["/usr/bin/../bin/gzip"]),
        ("jobs_shell_sandbox_executables", [3]),
        ("jobs_shell_writable_paths", "/srv/out"),
        ("jobs_shell_writable_paths", ["srv/out"]),
        ("jobs_shell_writable_paths", ["/srv/out/"]),
        ("jobs_shell_writable_paths", [None]),
    ],
)
def test_malformed_sandbox_settings_are_refused_naming_the_key(
    make_app: Callable[..., Celery], key: str, value: object
) -> None:
    with pytest.raises(ImproperlyConfigured, match=key):
        ConfigCache.get(make_app(**{key: value}))


def test_a_path_both_writable_and_executable_is_refused(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_shell_sandbox_executables=["/srv/tools"], jobs_shell_writable_paths=["/srv"])
    with pytest.raises(
        ImproperlyConfigured, match=r"jobs_shell_writable_paths.*write a program there and run it"
    ):
        ConfigCache.get(app)
    config = ConfigCache.get(make_app(jobs_shell_sandbox="required", jobs_shell_writable_paths=["/srv/out"]))
    assert (config.shell_sandbox, config.shell_writable_paths) == ("required", ("/srv/out",))


def test_worker_warns_at_start_up_about_a_listed_directory_that_holds_a_shell(
    make_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        jobs_allowed_shell_commands=["echo"], jobs_shell_sandbox_executables=["/bin", "/usr/bin/gzip"]
    )
    shell_task(app)
    with caplog.at_level(logging.WARNING, logger="celery_jobs_ext.shell"), in_process_worker(app):
        pass
    warnings = [r.getMessage() for r in caplog.records if "jobs_shell_sandbox_executables" in r.getMessage()]
    assert len(warnings) == 1
    assert "'/bin'" in warnings[0]
    assert "sh" in warnings[0]


@needs_landlock
def test_removing_the_tmpdir_never_follows_a_link_the_command_left(places: dict[str, Path]) -> None:
    outside = places["elsewhere"] / "keep"
    outside.mkdir()
    (outside / "file").write_text("kept\n")
    outside.chmod(0o755)
    code = (
        "import os\n"
        "d = os.environ['TMPDIR']\n"
        f"os.symlink({str(outside)!r}, d + '/link')\n"
        "os.makedirs(d + '/locked/inner'); os.chmod(d + '/locked/inner', 0); os.chmod(d + '/locked', 0)\n"
        "print(d)\n"
    )
    private = str(run([which("python3"), "-c", code])["stdout"]).strip()
    assert not os.path.lexists(private)
    assert (outside / "file").read_text() == "kept\n"
    assert outside.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("plan", ["not json", '{"abi": 0, "exec": [], "write": []}', '{"abi": 7}'])
def test_the_helper_runs_nothing_when_the_sandbox_cannot_be_set_up(tmp_path: Path, plan: str) -> None:
    from celery_jobs_ext.shell.runner import REAPER_SCRIPT

    marker = tmp_path / "ran"
    status_read, status_write = os.pipe()
    env_read, env_write = os.pipe()
    os.close(env_write)
    helper = subprocess.run(
        [sys.executable, "-I", "-S", REAPER_SCRIPT, str(status_write), str(env_read), str(os.getpid()), plan,
         "--", which("touch"), str(marker)],
        pass_fds=(status_write, env_read), capture_output=True, timeout=60,
    )  # fmt: skip
    os.close(status_write)
    os.close(env_read)
    with os.fdopen(status_read) as status:
        assert status.read().startswith("sandbox ")
    assert helper.returncode == 0
    assert not marker.exists()


@needs_landlock
def test_without_a_temporary_directory_the_command_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # the worker's TMPDIR, removed
    with pytest.raises(ShellCommandFailed, match="no temporary directory") as caught:
        run([which("true")])
    assert caught.value.returncode == 126


@needs_landlock
def test_a_listed_file_is_writable_and_its_siblings_are_not(places: dict[str, Path]) -> None:
    listed = places["elsewhere"] / "existing"
    run([which("sort"), "-o", str(listed), str(listed)], writable_paths=[str(listed)])
    assert listed.read_text() == "original\n"
    run([which("cp"), "/dev/null", str(listed)], writable_paths=[str(listed)])  # truncates it
    assert listed.read_text() == ""
    with pytest.raises(ShellCommandFailed, match="Permission denied"):
        run([which("touch"), str(places["elsewhere"] / "sibling")], writable_paths=[str(listed)])
    assert not (places["elsewhere"] / "sibling").exists()


@needs_signal_scope
def test_one_job_cannot_signal_another_jobs_command(tmp_path: Path) -> None:
    import threading

    pid_file, stop = tmp_path / "pid", tmp_path / "stop"
    waiter = (
        "import os, sys, time\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "deadline = time.monotonic() + 60\n"
        "while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    first: dict[str, object] = {}

    def first_job() -> None:
        first.update(
            run([which("python3"), "-c", waiter, str(pid_file), str(stop)], writable_paths=[str(tmp_path)])
        )

    thread = threading.Thread(target=first_job)
    thread.start()
    try:
        pid = read_pid(pid_file)
        with pytest.raises(ShellCommandFailed, match="Operation not permitted"):
            run([which("python3"), "-c", f"import os\nos.kill({pid}, {int(signal.SIGKILL)})\n"])
        assert not is_dead(pid)
    finally:
        stop.write_text("")
        thread.join(timeout=60)
    assert first["returncode"] == 0
